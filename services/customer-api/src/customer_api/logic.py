"""What the customer can see and do, free of HTTP: one implementation behind the JSON API and the
pages.

Every function takes the signed-in customer's id and scopes its queries to it; another customer's
alert raises :class:`AlertNotFound`, exactly like a missing one. The callers map :class:`AlertError`
to their own answer (a JSON error, an HTML page).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Literal, TypeVar

from asyncpg import Record
from sqlalchemy import TextClause, select, text, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from customer_api import queries
from customer_api.models import (
    CustomerAlert,
    LabelCheck,
    PublicRecall,
    RemedyRequest,
    SentNotice,
)
from customer_api.reads import ReadPool
from recall_shared import events as ev
from recall_shared.cursors import decode_cursor, encode_cursor
from recall_shared.event_ids import event_id
from recall_shared.service import ServiceRuntime

_Row = TypeVar("_Row")
AlertFilter = Literal["open", "resolved", "all"]
RemedyOutcome = Literal["created", "replayed", "concurrent"]


class AlertError(Exception):
    """A refusal the customer can be told about; ``status`` is the HTTP status both front ends
    use."""

    status: int = 400


class AlertNotFound(AlertError):
    status = 404


class BadCursor(AlertError):
    status = 400


class AlertConflict(AlertError):
    status = 409


class RemedyNotOffered(AlertError):
    status = 422


class IdempotencyKeyReused(AlertError):
    status = 422


def unresolved_open() -> TextClause:
    """queries.OPEN_ALERT as a condition for ORM statements over the alerts table."""
    return text(queries.OPEN_ALERT)


# ------------------------------------------------------------------ reading


async def own_alert(
    session: AsyncSession, customer_id: str, alert_id: str, *, lock: bool = False
) -> CustomerAlert:
    stmt = select(CustomerAlert).where(
        CustomerAlert.alert_id == alert_id, CustomerAlert.customer_id == customer_id
    )
    if lock:
        stmt = stmt.with_for_update()
    alert = (await session.execute(stmt)).scalar_one_or_none()
    if alert is None:
        raise AlertNotFound("alert not found")
    return alert


def parse_cursor(cursor: str) -> tuple[datetime, str]:
    """The (created_at, alert_id) a ``next_cursor`` stands for."""
    try:
        return decode_cursor(cursor)
    except ValueError:
        raise BadCursor("cursor: not a cursor this API returned") from None


next_cursor_of = encode_cursor


def _page(
    rows: list[_Row], limit: int, position: Callable[[_Row], tuple[datetime, str]]
) -> tuple[list[_Row], str | None]:
    """A page of ``limit`` from the ``limit + 1`` rows read, and the cursor of the next page (None
    on the last)."""
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, next_cursor_of(*position(rows[-1]))


async def list_alerts(
    session: AsyncSession,
    customer_id: str,
    *,
    state: AlertFilter = "all",
    limit: int = 20,
    cursor: str | None = None,
) -> tuple[list[CustomerAlert], str | None]:
    """The customer's alerts, newest first, and the cursor of the next page (None on the last)."""
    stmt = (
        select(CustomerAlert)
        .where(CustomerAlert.customer_id == customer_id)
        .order_by(CustomerAlert.created_at.desc(), CustomerAlert.alert_id.desc())
        .limit(limit + 1)
    )
    if state == "open":
        stmt = stmt.where(unresolved_open())
    elif state == "resolved":
        stmt = stmt.where(text(queries.RESOLVED_ALERT))
    if cursor:
        stmt = stmt.where(
            tuple_(CustomerAlert.created_at, CustomerAlert.alert_id) < tuple_(*parse_cursor(cursor))
        )
    return _page(
        list((await session.execute(stmt)).scalars()), limit, lambda a: (a.created_at, a.alert_id)
    )


async def list_alert_rows(
    pool: ReadPool,
    customer_id: str,
    *,
    state: AlertFilter = "all",
    limit: int = 20,
    cursor: str | None = None,
) -> tuple[list[Record], str | None]:
    """:func:`list_alerts` as summary rows (queries.SUMMARY_COLUMNS) read with raw asyncpg: the same
    filters, order, page and cursor, without loading ORM entities (GET /v1/me/alerts)."""
    if cursor:
        rows = await pool.fetch(
            queries.ALERTS[state, True], customer_id, limit + 1, *parse_cursor(cursor)
        )
    else:
        rows = await pool.fetch(queries.ALERTS[state, False], customer_id, limit + 1)
    return _page(rows, limit, lambda r: (r["created_at"], r["alert_id"]))


async def banner(
    session: AsyncSession, pool: ReadPool, customer_id: str
) -> tuple[int, CustomerAlert | None]:
    """What the orders page shows: the number of open alerts and the most severe of them, chosen by
    the same query as GET /v1/me/banner (:func:`banner_row`); the page renders the whole alert, so
    that one is then loaded as an entity."""
    row = await banner_row(pool, customer_id)
    if row is None:
        return 0, None
    return int(row["open_count"]), await own_alert(session, customer_id, row["alert_id"])


async def banner_row(pool: ReadPool, customer_id: str) -> Record | None:
    """The banner's data in one round trip, read straight from the row (queries.BANNER: no ORM
    entity, no validation of the stored alert state): asked on every orders-page view, so it must be
    cheap."""
    rows = await pool.fetch(queries.BANNER, customer_id)
    return rows[0] if rows else None


async def remedy_of(session: AsyncSession, alert_id: str) -> RemedyRequest | None:
    """The remedy request of an alert the caller has already checked belongs to the customer."""
    return (
        await session.execute(select(RemedyRequest).where(RemedyRequest.alert_id == alert_id))
    ).scalar_one_or_none()


async def remedies_of(
    session: AsyncSession, customer_id: str, alert_ids: Sequence[str]
) -> dict[str, RemedyRequest]:
    if not alert_ids:
        return {}
    rows = await session.execute(
        select(RemedyRequest).where(
            RemedyRequest.customer_id == customer_id, RemedyRequest.alert_id.in_(alert_ids)
        )
    )
    return {r.alert_id: r for r in rows.scalars()}


async def withdrawn_recalls(session: AsyncSession, recall_ids: Sequence[str]) -> set[str]:
    """Which of these recalls were withdrawn (issued in error), not completed: their closed alerts
    say so (public_recalls, from recall.closed.v1)."""
    if not recall_ids:
        return set()
    rows = await session.execute(
        select(PublicRecall.recall_id).where(
            PublicRecall.recall_id.in_(recall_ids), PublicRecall.status == "withdrawn"
        )
    )
    return set(rows.scalars())


async def notices_of(session: AsyncSession, alert_id: str) -> list[SentNotice]:
    return list(
        (
            await session.execute(
                select(SentNotice).where(SentNotice.alert_id == alert_id).order_by(SentNotice.at)
            )
        ).scalars()
    )


# ------------------------------------------------------------------ acting


async def acknowledge(session: AsyncSession, customer_id: str, alert_id: str) -> CustomerAlert:
    a = await own_alert(session, customer_id, alert_id, lock=True)
    if a.acknowledged_at is None:
        a.acknowledged_at = datetime.now(UTC)
        await session.commit()
    return a


async def declare_not_affected(
    session: AsyncSession,
    runtime: ServiceRuntime,
    customer_id: str,
    alert_id: str,
    reason: str = "",
    *,
    label_checked: bool = False,
) -> CustomerAlert:
    a = await own_alert(session, customer_id, alert_id, lock=True)
    if a.status != "open":
        raise AlertConflict(f"alert is {a.status}")
    if (
        a.not_affected_at is None
        and not label_checked
        and (a.state.get("tier") == "confirmed" or await label_confirmed(session, alert_id))
    ):
        # We know this unit is in scope (from matching, or from its label while the upgrade is on
        # its way): only what its label says can tell otherwise (issue 17).
        raise AlertConflict(
            "this purchase is confirmed affected: check its label (POST .../label-check) to "
            "declare it not affected"
        )
    if a.not_affected_at is None:
        now = datetime.now(UTC)
        a.not_affected_at = now
        a.resolution = a.resolution or "not_affected"
        await runtime.outbox.add(
            session,
            ev.NotAffectedDeclared(
                alert_id=a.alert_id,
                customer_id=customer_id,
                recall_id=a.recall_id,
                declared_at=now,
                reason=reason,
            ),
            event_id=event_id("not-affected", a.alert_id),
        )
        await session.commit()
    return a


async def label_confirmed(session: AsyncSession, alert_id: str) -> bool:
    """Whether the customer's latest label check of this alert confirmed it (label_checks)."""
    latest = await session.scalar(
        select(LabelCheck.answer)
        .where(LabelCheck.alert_id == alert_id)
        .order_by(LabelCheck.checked_at.desc())
        .limit(1)
    )
    return latest == "confirmed"


def offered_remedies(a: CustomerAlert) -> list[str]:
    return [r["type"] for r in a.state["recall"]["remedies"]]


async def choose_remedy(
    session: AsyncSession,
    runtime: ServiceRuntime,
    customer_id: str,
    alert_id: str,
    remedy: ev.RemedyType,
    idempotency_key: str | None = None,
) -> tuple[RemedyRequest, RemedyOutcome]:
    """Record the choice and queue a remedy request on remedies.v1 (outbox). The same choice again
    is answered with the first request ("replayed"); a different one conflicts."""
    a = await own_alert(session, customer_id, alert_id, lock=True)
    existing = await remedy_of(session, alert_id)
    if existing is not None:
        if existing.remedy == remedy:
            return existing, "replayed"
        raise AlertConflict(f"a remedy was already chosen for this alert: {existing.remedy}")
    if a.status != "open":
        raise AlertConflict(f"alert is {a.status}; no remedy can be chosen")
    offered = set(offered_remedies(a))
    if remedy not in offered:
        raise RemedyNotOffered(
            f"remedy: {remedy!r} is not offered for this recall; offered: "
            f"{', '.join(sorted(offered))}"
        )
    now = datetime.now(UTC)
    req = RemedyRequest(
        request_id=str(uuid.uuid4()),
        alert_id=alert_id,
        customer_id=customer_id,
        remedy=remedy,
        idempotency_key=idempotency_key,
        case_state="requested",
        refunded_amount=Decimal("0"),
        requested_at=now,
        updated_at=now,
    )
    try:
        # The outbox insert autoflushes the request row, so a unique violation can surface there
        # too.
        session.add(req)
        await runtime.outbox.add(
            session,
            ev.RemedyRequested(
                request_id=req.request_id,
                alert_id=alert_id,
                customer_id=customer_id,
                recall_id=a.recall_id,
                remedy=remedy,
                requested_at=now,
            ),
            event_id=event_id("remedy-request", req.request_id),
        )
        await session.commit()
    except IntegrityError:
        await session.rollback()  # a concurrent identical request won; answer with it
        existing = await remedy_of(session, alert_id)
        if (
            existing is None
        ):  # not this alert's row: the customer's Idempotency-Key belongs to another request
            raise IdempotencyKeyReused(
                "Idempotency-Key: already used for a different request"
            ) from None
        if existing.remedy != remedy:
            raise AlertConflict(f"a remedy was already chosen: {existing.remedy}") from None
        return existing, "concurrent"
    return req, "created"
