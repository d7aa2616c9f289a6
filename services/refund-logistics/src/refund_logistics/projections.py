"""refund-logistics' read models of recalls, alerts, notices and "not affected" answers, from Kafka.

A case that arrived before its recall or alert goes on once both are known (the case lifecycle's
``resume``)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any
from typing import cast as cast_type

from pydantic import TypeAdapter
from sqlalchemy import (
    DateTime,
    Integer,
    String,
    Table,
    Text,
    any_,
    bindparam,
    cast,
    column,
    func,
    literal,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, insert
from sqlalchemy.ext.asyncio import AsyncSession

from recall_shared import events as ev
from recall_shared.envelope import Envelope
from recall_shared.handlers import Delivery
from refund_logistics.case_rows import LOCK_RECALL
from refund_logistics.lifecycle import CaseLifecycle
from refund_logistics.models import KnownAlert, KnownRecall, NotAffected, NoticeRecord
from refund_logistics.notice_states import REPORTED, REPORTED_AFTER, SENT, AnyNotice

# The lines as JSON in one call of pydantic's serializer (a quarter of the CPU of dumping each line
# to a dict and the dicts with json.dumps; the same JSON value).
_LINES = TypeAdapter(list[ev.AffectedLine])


def _known_alert_row(a: ev.AlertState) -> dict[str, Any]:
    return {
        "alert_id": a.alert_id,
        "customer_id": a.customer_id,
        "recall_id": a.recall_id,
        "alert_version": a.alert_version,
        "lines": _LINES.dump_json(a.lines).decode(),
        "units": sum(line.units for line in a.lines),
    }


# The alerts' columns as arrays, one element per row: a statement of constant shape (compiled once,
# with a handful of bind parameters), whatever the run's length.
_KNOWN_ALERT_COLUMNS = (
    column("alert_id", String),
    column("customer_id", String),
    column("recall_id", String),
    column("alert_version", Integer),
    column("lines", Text),
    column("units", Integer),
)
_KNOWN_ALERT_ARRAYS = (
    func.unnest(*(bindparam(c.name, type_=ARRAY(c.type)) for c in _KNOWN_ALERT_COLUMNS))
    .table_valued(*_KNOWN_ALERT_COLUMNS)
    .render_derived("known_alerts")
)
# Core, not the ORM: an ORM-enabled INSERT would read the arrays' names as column values.
_KNOWN_ALERTS = cast_type(Table, KnownAlert.__table__)
_KNOWN_ALERT_INSERT = insert(_KNOWN_ALERTS).from_select(
    ["alert_id", "customer_id", "recall_id", "alert_version", "lines", "units", "status"],
    select(
        _KNOWN_ALERT_ARRAYS.c.alert_id,
        _KNOWN_ALERT_ARRAYS.c.customer_id,
        _KNOWN_ALERT_ARRAYS.c.recall_id,
        _KNOWN_ALERT_ARRAYS.c.alert_version,
        cast(_KNOWN_ALERT_ARRAYS.c.lines, JSONB),
        _KNOWN_ALERT_ARRAYS.c.units,
        literal("open"),
    ),
)
UPSERT_KNOWN_ALERTS = _KNOWN_ALERT_INSERT.on_conflict_do_update(
    index_elements=["alert_id"],
    set_={
        k: _KNOWN_ALERT_INSERT.excluded[k]
        for k in ("customer_id", "recall_id", "alert_version", "status", "lines", "units")
    },
    where=_KNOWN_ALERTS.c.alert_version <= _KNOWN_ALERT_INSERT.excluded.alert_version,
)


async def _upsert_known_alerts(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await session.execute(
            UPSERT_KNOWN_ALERTS, {name: [r[name] for r in rows] for name in rows[0]}
        )


# A run's highest withdrawal per alert as arrays, and its closures as one array: statements of
# constant shape, compiled once (a VALUES list or an IN list is rendered anew for every run).
_WITHDRAWN = (
    func.unnest(
        bindparam("withdrawn_ids", type_=ARRAY(String)),
        bindparam("withdrawn_versions", type_=ARRAY(Integer)),
    )
    .table_valued(column("alert_id", String), column("alert_version", Integer))
    .render_derived("withdrawn")
)
WITHDRAW_KNOWN_ALERTS = (
    update(_KNOWN_ALERTS)
    .where(
        _KNOWN_ALERTS.c.alert_id == _WITHDRAWN.c.alert_id,
        _KNOWN_ALERTS.c.alert_version < _WITHDRAWN.c.alert_version,
    )
    .values(status="withdrawn", alert_version=_WITHDRAWN.c.alert_version)
)
# The recall closed; its units still count as affected.
CLOSE_KNOWN_ALERTS = (
    update(_KNOWN_ALERTS)
    .where(
        _KNOWN_ALERTS.c.alert_id == any_(bindparam("alert_ids", type_=ARRAY(String))),
        _KNOWN_ALERTS.c.status == "open",
    )
    .values(status="closed")
)

# The notices' columns as arrays, as the alerts': statements of constant shape (compiled once).
_NOTICE_COLUMNS = (
    column("notice_id", String),
    column("alert_id", String),
    column("customer_id", String),
    column("recall_id", String),
    column("kind", String),
    column("channel", String),
    column("status", String),
    column("at", DateTime(timezone=True)),
)
_NOTICE_ARRAYS = (
    func.unnest(*(bindparam(c.name, type_=ARRAY(c.type)) for c in _NOTICE_COLUMNS))
    .table_valued(*_NOTICE_COLUMNS)
    .render_derived("notice_rows")
)
_NOTICES = cast_type(Table, NoticeRecord.__table__)
_NOTICE_INSERT = insert(_NOTICES).from_select(
    [c.name for c in _NOTICE_COLUMNS], select(*_NOTICE_ARRAYS.c)
)
# A notice that went out counts as sent, unless more was heard of it since (on_notice).
UPSERT_SENT_NOTICES = _NOTICE_INSERT.on_conflict_do_update(
    index_elements=["notice_id"],
    set_={"status": "sent", "at": _NOTICE_INSERT.excluded.at},
    where=_NOTICES.c.status.in_(("sent", "failed")),
)
INSERT_FAILED_NOTICES = _NOTICE_INSERT.on_conflict_do_nothing()


def _notice_arrays(rows: Sequence[dict[str, Any]]) -> dict[str, list[Any]]:
    """The bind parameters of the notices' statements: one list per column, one row per notice
    (a bulk statement may touch a row only once)."""
    return {c.name: [r[c.name] for r in rows] for c in _NOTICE_COLUMNS}


def _forget_alerts(session: AsyncSession, alert_ids: Collection[str]) -> None:
    """Bulk statements bypass the session: expire its copies of these alerts, so that case logic
    later in the same batch (``session.get``) reads the rows as they are now."""
    if not len(session.identity_map):  # the common case on the hot path: nothing loaded
        return
    for alert_id in alert_ids:
        cached = session.identity_map.get(session.identity_key(KnownAlert, alert_id))
        if cached is not None:
            session.expire(cached)


class ReadModels:
    def __init__(self, lifecycle: CaseLifecycle) -> None:
        self.lifecycle = lifecycle

    # ------------------------------------------------------------------ read models

    async def on_recall(
        self,
        session: AsyncSession,
        event: ev.RecallPublished | ev.RecallAmended | ev.RecallClosed,
        env: Envelope,
    ) -> None:
        snap = event.recall
        refs = snap.content.regulator_references
        cpsc = next((r.number for r in refs if r.agency.upper() == "CPSC"), None) or (
            refs[0].number if refs else None
        )
        values = {
            "recall_id": snap.recall_id,
            "seller_id": snap.seller_id,
            "version": snap.version,
            "status": "closed" if isinstance(event, ev.RecallClosed) else "active",
            "logistics_enrolled": snap.logistics_enrolled,
            "consumer_contact": snap.content.consumer_contact,
            "title": snap.content.title,
            "regulator_number": cpsc,
            "incidents_reported": snap.content.incidents_reported,
            "injuries_reported": snap.content.injuries_reported,
        }
        # What the recall stated when published: its publication's counts (or the first version
        # seen), never moved by an amendment.
        first = {
            "incidents_at_publication": snap.content.incidents_reported,
            "injuries_at_publication": snap.content.injuries_reported,
        }
        updated = {**values, **first} if isinstance(event, ev.RecallPublished) else values
        await session.execute(LOCK_RECALL, {"id": snap.recall_id})
        stmt = insert(KnownRecall).values(**values, **first)
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=["recall_id"],
                set_={k: stmt.excluded[k] for k in updated},
                where=KnownRecall.version <= stmt.excluded.version,
            )
        )
        await self.lifecycle.resume(session, env, recall_id=snap.recall_id)

    async def on_alert(
        self, session: AsyncSession, event: ev.AlertRaised | ev.AlertUpdated, env: Envelope
    ) -> None:
        await _upsert_known_alerts(session, [_known_alert_row(event.alert)])
        _forget_alerts(session, [event.alert.alert_id])
        await self.lifecycle.resume(session, env, alert_id=event.alert.alert_id)

    async def on_alert_withdrawn(
        self, session: AsyncSession, event: ev.AlertWithdrawn, env: Envelope
    ) -> None:
        alert = await session.get(KnownAlert, event.alert_id)
        if alert is not None and alert.alert_version < event.alert_version:
            alert.status = "withdrawn"
            alert.alert_version = event.alert_version

    async def on_alert_closed(
        self, session: AsyncSession, event: ev.AlertClosed, env: Envelope
    ) -> None:
        alert = await session.get(KnownAlert, event.alert_id)
        if alert is not None and alert.status == "open":
            alert.status = "closed"  # the recall closed; its units still count as affected

    async def on_notice(self, session: AsyncSession, event: AnyNotice, env: Envelope) -> None:
        sent = isinstance(event, SENT)
        stmt = insert(NoticeRecord).values(
            notice_id=event.notice_id,
            alert_id=event.alert_id,
            customer_id=event.customer_id,
            recall_id=event.recall_id,
            kind=event.kind,
            channel=event.channel,
            status="sent" if sent else "failed",
            at=event.sent_at if isinstance(event, SENT) else event.failed_at,
        )
        if sent:  # a notice that went out counts as sent, unless more was heard of it since
            stmt = stmt.on_conflict_do_update(
                index_elements=["notice_id"],
                set_={"status": "sent", "at": stmt.excluded.at},
                where=NoticeRecord.status.in_(("sent", "failed")),
            )
        else:
            stmt = stmt.on_conflict_do_nothing()
        await session.execute(stmt)

    # ------------------------------------------------------------------ read models, in bulk
    # What the consumers run: the batch forms of the one-event handlers above. Each leaves the
    # rows (and the cases) exactly as its one-event form applied to every delivery in order would,
    # writing a run of deliveries with one statement per table (a bulk statement touches a row only
    # once, so each first folds its run to one row per key).

    async def on_alerts(
        self,
        session: AsyncSession,
        deliveries: Sequence[Delivery[ev.AlertRaised | ev.AlertUpdated]],
    ) -> None:
        """on_alert for a run. An alert that a case waits for takes the one-event path, so the case
        goes on with the very version it would have seen; the rest are folded to their newest state
        (the highest version; on a tie the later one, since ``<=`` lets it win) and upserted at
        once."""
        alert_ids = {d.event.alert.alert_id for d in deliveries}
        awaited = {
            case.alert_id for case in await self.lifecycle.cases_waiting_for(session, alert_ids)
        }
        newest: dict[str, Delivery[ev.AlertRaised | ev.AlertUpdated]] = {}
        for d in deliveries:
            a = d.event.alert
            if a.alert_id in awaited:
                await self.on_alert(session, d.event, d.envelope)
                continue
            kept = newest.get(a.alert_id)
            if kept is None or a.alert_version >= kept.event.alert.alert_version:
                newest[a.alert_id] = d
        await _upsert_known_alerts(
            session, [_known_alert_row(d.event.alert) for d in newest.values()]
        )
        _forget_alerts(session, newest.keys())
        # None waited above; a case committed since (a remedy request on another partition) goes
        # on now, as on_alert's own resume would take it.
        for case in await self.lifecycle.cases_waiting_for(session, newest.keys()):
            await self.lifecycle.advance(session, case, newest[case.alert_id].envelope.id)

    async def on_alerts_withdrawn(
        self, session: AsyncSession, deliveries: Sequence[Delivery[ev.AlertWithdrawn]]
    ) -> None:
        """on_alert_withdrawn for a run: withdrawals of one alert apply while each is newer than the
        row, so their net effect is the highest version's; one guarded UPDATE with it per alert."""
        highest: dict[str, int] = {}
        for d in deliveries:
            e = d.event
            highest[e.alert_id] = max(highest.get(e.alert_id, e.alert_version), e.alert_version)
        await session.execute(
            WITHDRAW_KNOWN_ALERTS,
            {"withdrawn_ids": list(highest), "withdrawn_versions": list(highest.values())},
        )
        _forget_alerts(session, highest.keys())

    async def on_alerts_closed(
        self, session: AsyncSession, deliveries: Sequence[Delivery[ev.AlertClosed]]
    ) -> None:
        alert_ids = list(dict.fromkeys(d.event.alert_id for d in deliveries))
        await session.execute(CLOSE_KNOWN_ALERTS, {"alert_ids": alert_ids})
        _forget_alerts(session, alert_ids)

    async def on_notices(
        self, session: AsyncSession, deliveries: Sequence[Delivery[AnyNotice]]
    ) -> None:
        """on_notice for a run. A notice's first event inserts it; a later "sent" marks it sent at
        its time, a later "failed" changes nothing. So: the first event's row, sent at the last
        "sent" time if one was heard (upserted), else failed (inserted if new)."""
        rows: dict[str, dict[str, Any]] = {}
        last_sent: dict[str, datetime] = {}
        for d in deliveries:
            e = d.event
            sent = isinstance(e, SENT)
            rows.setdefault(
                e.notice_id,
                {
                    "notice_id": e.notice_id,
                    "alert_id": e.alert_id,
                    "customer_id": e.customer_id,
                    "recall_id": e.recall_id,
                    "kind": e.kind,
                    "channel": e.channel,
                    "status": "sent" if sent else "failed",
                    "at": e.sent_at if isinstance(e, SENT) else e.failed_at,
                },
            )
            if isinstance(e, SENT):
                last_sent[e.notice_id] = e.sent_at
        sent_rows = [
            r | {"status": "sent", "at": last_sent[n]} for n, r in rows.items() if n in last_sent
        ]
        failed_rows = [r for n, r in rows.items() if n not in last_sent]
        if sent_rows:
            await session.execute(UPSERT_SENT_NOTICES, _notice_arrays(sent_rows))
        if failed_rows:
            await session.execute(INSERT_FAILED_NOTICES, _notice_arrays(failed_rows))

    async def on_notice_reported(
        self,
        session: AsyncSession,
        event: ev.NoticeDelivered
        | ev.NoticeBounced
        | ev.NoticeComplained
        | ev.NoticeLetterReturned,
        env: Envelope,
    ) -> None:
        """What became of a sent notice (notice_states.REPORTED_AFTER): delivered, bounced,
        complained. A fast report can come before the notice's own sent event (the provider
        answered before the notifier recorded the send): then it makes the row, and the sent
        event that follows leaves it."""
        status = REPORTED[type(event)]
        at = (
            event.delivered_at
            if isinstance(event, ev.NoticeDelivered)
            else event.bounced_at
            if isinstance(event, ev.NoticeBounced)
            else event.returned_at
            if isinstance(event, ev.NoticeLetterReturned)
            else event.complained_at
        )
        stmt = insert(NoticeRecord).values(
            notice_id=event.notice_id,
            alert_id=event.alert_id,
            customer_id=event.customer_id,
            recall_id=event.recall_id,
            kind=event.kind,
            channel=event.channel,
            status=status,
            at=at,
        )
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=["notice_id"],
                set_={"status": status},
                where=NoticeRecord.status.in_(REPORTED_AFTER[status]),
            )
        )

    async def on_not_affected(
        self, session: AsyncSession, event: ev.NotAffectedDeclared, env: Envelope
    ) -> None:
        stmt = insert(NotAffected).values(
            alert_id=event.alert_id,
            customer_id=event.customer_id,
            recall_id=event.recall_id,
            declared_at=event.declared_at,
            reason=event.reason,
        )
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=["alert_id", "customer_id"],
                set_={"declared_at": stmt.excluded.declared_at, "reason": stmt.excluded.reason},
            )
        )
