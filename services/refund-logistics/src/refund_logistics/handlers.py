"""refund-logistics' service layer: read models from Kafka, remedy cases and their side effects.

Consumers: recalls, alerts (incl. withdrawals and closures), notices, remedy requests and
"not affected" answers (seller API keys: ``recall_shared.api_keys.key_handlers``, wired in app.py).
Commands from the API: proof of destruction, item received, fulfilment, reject, close, enrolment.

Refunds are paid exactly once, across retries, redeliveries, concurrent requests and crashes
(RLS.md):
1. *plan*: in the transaction that accepts the trigger (a proof, an item received), one refund
   intent per order line is written (``refunds`` row, ``pending``, with its idempotency key
   ``refund:{case}:{line}``; unique per (case, line); the alert row is locked so two cases of one
   alert never pay one line twice);
2. *claim*: an UPDATE takes a lease on the pending intents (only one caller wins; the rest return);
3. *pay*: the provider is called with the intent's idempotency key (it answers a repeated key with
   the original refund);
4. *record*: one transaction marks the intents paid, writes the seller ledger, the case transition
   and its outbox event.
A crash between any two steps leaves a pending intent; when its lease runs out the recovery loop
(or a retried request) claims it again and calls the provider with the same key: one payment.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Collection, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from typing import cast as cast_type

from sqlalchemy import (
    Integer,
    String,
    Table,
    Text,
    bindparam,
    cast,
    column,
    func,
    literal,
    select,
    text,
    update,
    values,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from recall_shared import events as ev
from recall_shared.db import statement_chunks
from recall_shared.envelope import Envelope
from recall_shared.handlers import Delivery, HandlerMap, batched
from recall_shared.outbox import Outbox
from recall_shared.waits import wait_set
from refund_logistics.carrier import Carrier, CarrierError
from refund_logistics.domain import apply, refunds_due
from refund_logistics.models import (
    Case,
    CaseProof,
    CaseProofImage,
    CaseTransition,
    Enrolment,
    Fulfilment,
    KnownAlert,
    KnownRecall,
    LedgerEntry,
    NotAffected,
    NoticeRecord,
    Refund,
    ReturnLabel,
)
from refund_logistics.payments import PaymentError, PaymentProvider

log = logging.getLogger(__name__)

# A case whose recall is not known yet waits for it, and a recall arriving resumes the waiting
# cases: two transactions (remedies.v1 is keyed by customer, recalls.v1 by recall, so they run in
# different slots or instances) that must not miss each other under READ COMMITTED. A case looks
# its recall up under a shared lock per recall, a recall is stored under the exclusive one, so one
# always sees the other's commit.
_LOCK_RECALL_SHARED = text(
    "SELECT pg_advisory_xact_lock_shared(hashtextextended('refund-logistics.recall:' || :id, 0))"
)
_LOCK_RECALL = text(
    "SELECT pg_advisory_xact_lock(hashtextextended('refund-logistics.recall:' || :id, 0))"
)

CASE_NAMESPACE = uuid.UUID("3d1e4b8a-7c2f-4a9e-b6d0-8f5e2c1a9b34")

# (point, case_id) -> None; a test raises from it to simulate a crash at that point.
FaultHook = Callable[[str, str], Awaitable[None]]
FAULT_POINTS = (
    "after_intent",
    "before_provider_call",
    "after_provider_call",
    "after_refund_row",
    "after_transition",
    "after_outbox",
    "after_commit",
)


def _known_alert_row(a: ev.AlertState) -> dict[str, Any]:
    return {
        "alert_id": a.alert_id,
        "customer_id": a.customer_id,
        "recall_id": a.recall_id,
        "alert_version": a.alert_version,
        "lines": json.dumps([line.model_dump(mode="json") for line in a.lines]),
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


def _forget_alerts(session: AsyncSession, alert_ids: Collection[str]) -> None:
    """Bulk statements bypass the session: expire its copies of these alerts, so that case logic
    later in the same batch (``session.get``) reads the rows as they are now."""
    for alert_id in alert_ids:
        cached = session.identity_map.get(session.identity_key(KnownAlert, alert_id))
        if cached is not None:
            session.expire(cached)


def case_id_for(request_id: str) -> str:
    return str(uuid.uuid5(CASE_NAMESPACE, request_id))


class CaseNotFound(Exception):
    pass


class CaseConflict(Exception):
    """The command does not fit the case's state (HTTP 409)."""


async def _no_fault(point: str, case_id: str) -> None:
    return None


class Cases:
    def __init__(
        self,
        outbox: Outbox,
        payments: PaymentProvider,
        case_fee: Decimal,
        *,
        carrier: Carrier,
        session_factory: async_sessionmaker[AsyncSession] | None = None,
        refund_lease_s: float = 30.0,
        return_warehouse: str = "RLS returns centre",
        fault: FaultHook | None = None,
    ) -> None:
        self.outbox = outbox
        self.payments = payments
        self.carrier = carrier
        self.case_fee = case_fee
        self.session_factory = session_factory
        self.refund_lease_s = refund_lease_s
        self.return_warehouse = return_warehouse
        self.fault: FaultHook = fault or _no_fault

    # ------------------------------------------------------------------ transitions

    async def transition(
        self,
        session: AsyncSession,
        case: Case,
        name: str,
        *,
        cause: str | None = None,
        reason: str | None = None,
    ) -> None:
        previous = case.state if name != "open" else None
        case.state = apply(previous, name)
        case.updated_at = datetime.now(UTC)
        if reason is not None:
            case.reason = reason
        session.add(
            CaseTransition(
                case_id=case.case_id,
                transition=name,
                from_state=previous,
                to_state=case.state,
                at=case.updated_at,
            )
        )
        await session.flush()
        await self.fault("after_transition", case.case_id)
        await self.outbox.add(
            session,
            ev.RemedyCaseTransitioned(
                case_id=case.case_id,
                request_id=case.request_id,
                alert_id=case.alert_id,
                customer_id=case.customer_id,
                recall_id=case.recall_id,
                seller_id=case.seller_id,
                remedy=case.remedy,
                transition=name,
                from_state=previous,
                state=case.state,
                refunded_amount=case.refunded_amount,
                currency=case.currency,
                reason=case.reason,
                occurred_at=case.updated_at,
            ),
            causation_id=cause,
            # Deterministic, and short enough for the 64-character outbox/inbox event ids: the
            # readable "case:{case_id}:{transition}:{from}" is up to 68 characters
            # (e.g. refer_to_seller).
            event_id=f"case:{uuid.uuid5(CASE_NAMESPACE, f'{case.case_id}:{name}:{previous}')}",
        )
        await self.fault("after_outbox", case.case_id)

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
        }
        await session.execute(_LOCK_RECALL, {"id": snap.recall_id})
        stmt = insert(KnownRecall).values(**values)
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=["recall_id"],
                set_={k: stmt.excluded[k] for k in values},
                where=KnownRecall.version <= stmt.excluded.version,
            )
        )
        await self._resume(session, env, recall_id=snap.recall_id)

    async def on_alert(
        self, session: AsyncSession, event: ev.AlertRaised | ev.AlertUpdated, env: Envelope
    ) -> None:
        await _upsert_known_alerts(session, [_known_alert_row(event.alert)])
        _forget_alerts(session, [event.alert.alert_id])
        await self._resume(session, env, alert_id=event.alert.alert_id)

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

    async def on_notice(
        self, session: AsyncSession, event: ev.NoticeSent | ev.NoticeFailed, env: Envelope
    ) -> None:
        sent = isinstance(event, ev.NoticeSent)
        stmt = insert(NoticeRecord).values(
            notice_id=event.notice_id,
            alert_id=event.alert_id,
            customer_id=event.customer_id,
            recall_id=event.recall_id,
            kind=event.kind,
            channel=event.channel,
            status="sent" if sent else "failed",
            at=event.sent_at if isinstance(event, ev.NoticeSent) else event.failed_at,
        )
        if sent:  # a notice that went out counts as sent, whatever else was heard about it
            stmt = stmt.on_conflict_do_update(
                index_elements=["notice_id"], set_={"status": "sent", "at": stmt.excluded.at}
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
        awaited = {case.alert_id for case in await self._cases_waiting_for(session, alert_ids)}
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
        for case in await self._cases_waiting_for(session, newest.keys()):
            await self._advance(session, case, newest[case.alert_id].envelope.id)

    async def _cases_waiting_for(
        self, session: AsyncSession, alert_ids: Collection[str]
    ) -> list[Case]:
        """The cases of these alerts that _resume would go on with (locked, as it locks them)."""
        cases: list[Case] = []
        for chunk in statement_chunks(sorted(alert_ids)):
            stmt = (
                select(Case)
                .where(Case.waiting_for.in_(("alert", "recall")), Case.alert_id.in_(chunk))
                .with_for_update()
            )
            cases.extend((await session.execute(stmt)).scalars())
        return cases

    async def on_alerts_withdrawn(
        self, session: AsyncSession, deliveries: Sequence[Delivery[ev.AlertWithdrawn]]
    ) -> None:
        """on_alert_withdrawn for a run: withdrawals of one alert apply while each is newer than the
        row, so their net effect is the highest version's; one guarded UPDATE with it per alert."""
        highest: dict[str, int] = {}
        for d in deliveries:
            e = d.event
            highest[e.alert_id] = max(highest.get(e.alert_id, e.alert_version), e.alert_version)
        for chunk in statement_chunks(list(highest.items())):
            withdrawn = values(
                column("alert_id", String), column("alert_version", Integer), name="withdrawn"
            ).data(list(chunk))
            await session.execute(
                update(KnownAlert)
                .where(
                    KnownAlert.alert_id == withdrawn.c.alert_id,
                    KnownAlert.alert_version < withdrawn.c.alert_version,
                )
                .values(status="withdrawn", alert_version=withdrawn.c.alert_version)
                .execution_options(synchronize_session=False)
            )
        _forget_alerts(session, highest.keys())

    async def on_alerts_closed(
        self, session: AsyncSession, deliveries: Sequence[Delivery[ev.AlertClosed]]
    ) -> None:
        alert_ids = list(dict.fromkeys(d.event.alert_id for d in deliveries))
        for chunk in statement_chunks(alert_ids):
            await session.execute(
                update(KnownAlert)
                .where(KnownAlert.alert_id.in_(chunk), KnownAlert.status == "open")
                .values(status="closed")
                .execution_options(synchronize_session=False)
            )
        _forget_alerts(session, alert_ids)

    async def on_notices(
        self, session: AsyncSession, deliveries: Sequence[Delivery[ev.NoticeSent | ev.NoticeFailed]]
    ) -> None:
        """on_notice for a run. A notice's first event inserts it; a later "sent" marks it sent at
        its time, a later "failed" changes nothing. So: the first event's row, sent at the last
        "sent" time if one was heard (upserted), else failed (inserted if new)."""
        rows: dict[str, dict[str, Any]] = {}
        last_sent: dict[str, datetime] = {}
        for d in deliveries:
            e = d.event
            sent = isinstance(e, ev.NoticeSent)
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
                    "at": e.sent_at if isinstance(e, ev.NoticeSent) else e.failed_at,
                },
            )
            if isinstance(e, ev.NoticeSent):
                last_sent[e.notice_id] = e.sent_at
        sent_rows = [
            r | {"status": "sent", "at": last_sent[n]} for n, r in rows.items() if n in last_sent
        ]
        failed_rows = [r for n, r in rows.items() if n not in last_sent]
        for chunk in statement_chunks(sent_rows):
            stmt = insert(NoticeRecord).values(list(chunk))
            await session.execute(
                stmt.on_conflict_do_update(
                    index_elements=["notice_id"], set_={"status": "sent", "at": stmt.excluded.at}
                )
            )
        for chunk in statement_chunks(failed_rows):
            await session.execute(insert(NoticeRecord).values(list(chunk)).on_conflict_do_nothing())

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

    # ------------------------------------------------------------------ cases from remedy requests

    async def on_remedy_requested(
        self, session: AsyncSession, event: ev.RemedyRequested, env: Envelope
    ) -> None:
        case_id = case_id_for(event.request_id)
        stmt = (
            insert(Case)
            .values(
                case_id=case_id,
                request_id=event.request_id,
                alert_id=event.alert_id,
                customer_id=event.customer_id,
                recall_id=event.recall_id,
                seller_id=None,
                remedy=event.remedy,
                state="requested",
                refunded_amount=Decimal("0"),
            )
            .on_conflict_do_nothing()
            .returning(Case.case_id)
        )
        if (await session.execute(stmt)).first() is None:
            return  # the same request again (a new ce_id): the case exists
        case = (
            await session.execute(
                select(Case)
                .where(Case.case_id == case_id)
                .execution_options(populate_existing=True)
            )
        ).scalar_one()
        await self.transition(session, case, "open", cause=env.id)
        await self._advance(session, case, env.id)

    async def _resume(
        self,
        session: AsyncSession,
        env: Envelope,
        *,
        alert_id: str | None = None,
        recall_id: str | None = None,
    ) -> None:
        """Cases that arrived before their alert or recall go on once both are known."""
        stmt = select(Case).where(Case.waiting_for.in_(("alert", "recall"))).with_for_update()
        stmt = (
            stmt.where(Case.alert_id == alert_id)
            if alert_id
            else stmt.where(Case.recall_id == recall_id)
        )
        for case in (await session.execute(stmt)).scalars():
            await self._advance(session, case, env.id)

    async def is_enrolled(self, session: AsyncSession, recall: KnownRecall) -> bool:
        """An explicit enrolment (API) wins over the flag the recall was published with."""
        explicit = await session.get(Enrolment, recall.recall_id)
        return explicit.enrolled if explicit is not None else recall.logistics_enrolled

    async def _advance(self, session: AsyncSession, case: Case, cause: str | None) -> None:
        await session.execute(_LOCK_RECALL_SHARED, {"id": case.recall_id})
        recall = await session.get(KnownRecall, case.recall_id)
        alert = await session.get(KnownAlert, case.alert_id)
        if recall is None or alert is None:
            case.waiting_for = "recall" if recall is None else "alert"
            return
        case.waiting_for = None
        case.seller_id = recall.seller_id
        case.units = alert.units
        if alert.customer_id != case.customer_id:
            await self.transition(
                session, case, "reject", cause=cause, reason="the alert belongs to another customer"
            )
            return
        if alert.recall_id != case.recall_id:
            await self.transition(
                session, case, "reject", cause=cause, reason="the alert is not for this recall"
            )
            return
        if alert.status == "withdrawn":
            await self.transition(
                session,
                case,
                "reject",
                cause=cause,
                reason="the alert was withdrawn: the purchase is not affected",
            )
            return
        if not await self.is_enrolled(session, recall):
            contact = recall.consumer_contact or "the seller"
            await self.transition(
                session,
                case,
                "refer_to_seller",
                cause=cause,
                reason=f"The seller handles this remedy directly. Contact: {contact}",
            )
            return
        if case.remedy == "refund_on_destruction":
            case.waiting_for = (
                "proof"  # the customer's photo of the destroyed unit (POST /v1/cases/{id}/proof)
            )
        elif case.remedy == "refund_with_return":
            await self._issue_label(session, case, alert, cause)
        else:
            case.waiting_for = "seller"  # replacement or repair: the seller's fulfilment

    async def _issue_label(
        self, session: AsyncSession, case: Case, alert: KnownAlert, cause: str | None
    ) -> None:
        key = f"label:{case.case_id}"
        currency = alert.lines[0]["currency"] if alert.lines else "EUR"
        try:
            label = await self.carrier.issue_label(
                idempotency_key=key,
                reference=case.case_id,
                customer_id=case.customer_id,
                units=case.units,
                return_to=self.return_warehouse,
                currency=currency,
            )
        except CarrierError as exc:
            if exc.transient:
                case.waiting_for = "label"  # the recovery loop asks again, with the same key
                case.reason = f"waiting for the carrier: {exc}"[:2000]
                return
            await self.transition(
                session,
                case,
                "reject",
                cause=cause,
                reason=f"the carrier refused the return label: {exc}"[:2000],
            )
            return
        await session.execute(
            insert(ReturnLabel)
            .values(
                case_id=case.case_id,
                idempotency_key=key,
                carrier_ref=label.carrier_ref,
                tracking_number=label.tracking_number,
                label_url=label.label_url,
                cost=label.cost,
                currency=label.currency,
            )
            .on_conflict_do_nothing()
        )
        if label.cost > 0:
            await session.execute(
                insert(LedgerEntry)
                .values(
                    seller_id=case.seller_id,
                    case_id=case.case_id,
                    kind="label",
                    amount=label.cost,
                    currency=label.currency,
                )
                .on_conflict_do_nothing()
            )
        case.waiting_for = "item"
        case.reason = None
        await self.transition(session, case, "issue_label", cause=cause)

    # ------------------------------------------------------------------ commands (API)

    def _sf(self) -> async_sessionmaker[AsyncSession]:
        assert self.session_factory is not None, "Cases needs a session factory for commands"
        return self.session_factory

    async def _locked_case(self, session: AsyncSession, case_id: str) -> Case:
        case = (
            await session.execute(
                select(Case)
                .where(Case.case_id == case_id)
                .with_for_update()
                .execution_options(populate_existing=True)
            )
        ).scalar_one_or_none()
        if case is None:
            raise CaseNotFound(case_id)
        return case

    async def submit_proof(
        self, case_id: str, customer_id: str, image: bytes, content_type: str
    ) -> tuple[Case, CaseProof]:
        """The customer's photo of the destroyed unit; then the refund. Repeating the same photo is
        a no-op (it only nudges a pending refund); a different photo after the first is a conflict.
        Returns the case and its proof as they are afterwards."""
        digest = hashlib.sha256(image).hexdigest()
        # Fast path, without a lock: a repeated upload (a client's retry, a double tap, 1,000 at
        # once).
        seen = await self._case_and_proof(case_id)
        if seen is None or seen[0].customer_id != customer_id:
            raise CaseNotFound(case_id)
        case, proof = seen
        if proof is not None:
            if proof.sha256 != digest:
                raise CaseConflict("a proof of destruction was already received for this case")
            if case.waiting_for != "payment":
                return case, proof
        else:
            async with self._sf()() as session, session.begin():
                case = await self._locked_case(session, case_id)
                existing = await session.get(CaseProof, case_id)
                if existing is not None:  # another upload won the race
                    if existing.sha256 != digest:
                        raise CaseConflict(
                            "a proof of destruction was already received for this case"
                        )
                else:
                    if case.remedy != "refund_on_destruction":
                        raise CaseConflict(
                            "a proof of destruction is for refund_on_destruction cases; "
                            f"this case is {case.remedy}"
                        )
                    apply(
                        case.state, "issue_refund"
                    )  # IllegalCaseTransition (409) for a closed, rejected, referred case
                    if case.waiting_for in ("alert", "recall"):
                        raise CaseConflict(
                            f"the case is waiting for its {case.waiting_for}; try again shortly"
                        )
                    session.add(
                        CaseProof(
                            case_id=case_id,
                            sha256=digest,
                            size=len(image),
                            content_type=content_type,
                        )
                    )
                    session.add(CaseProofImage(case_id=case_id, image=image))
                    await self._plan_refund(session, case)
                    await self.fault("after_intent", case_id)
        await self.settle(case_id)
        after = await self._case_and_proof(case_id)
        assert after is not None and after[1] is not None
        return after  # type: ignore[return-value]

    async def _case_and_proof(self, case_id: str) -> tuple[Case, CaseProof | None] | None:
        async with self._sf()() as session:
            row = (
                await session.execute(
                    select(Case, CaseProof)
                    .outerjoin(CaseProof, CaseProof.case_id == Case.case_id)
                    .where(Case.case_id == case_id)
                )
            ).first()
        return (row[0], row[1]) if row is not None else None

    async def item_received(self, case_id: str) -> None:
        """The carrier's or warehouse's webhook: the returned item arrived; then the refund.
        Redelivered webhooks are answered with the case as it is."""
        async with self._sf()() as session:
            seen = (
                await session.execute(
                    select(Case.remedy, Case.state, Case.waiting_for).where(Case.case_id == case_id)
                )
            ).first()
        if seen is None:
            raise CaseNotFound(case_id)
        if seen.remedy == "refund_with_return" and seen.state in (
            "item_received",
            "refunded",
            "closed",
        ):
            if seen.waiting_for == "payment":
                await self.settle(case_id)
            return
        async with self._sf()() as session, session.begin():
            case = await self._locked_case(session, case_id)
            if case.remedy == "refund_with_return" and case.state in (
                "item_received",
                "refunded",
                "closed",
            ):
                pass  # a repeated webhook
            else:
                await self.transition(session, case, "receive_item")
                await session.execute(
                    update(ReturnLabel)
                    .where(ReturnLabel.case_id == case_id)
                    .values(received_at=func.now())
                )
                await self._plan_refund(session, case)
                await self.fault("after_intent", case_id)
        await self.settle(case_id)

    async def fulfil(
        self,
        case_id: str,
        *,
        kind: str | None,
        tracking_number: str | None,
        note: str,
        key_id: str,
        may_act: Callable[[AsyncSession, Case], Awaitable[bool]],
    ) -> None:
        async with self._sf()() as session, session.begin():
            case = await self._locked_case(session, case_id)
            if not await may_act(session, case):
                raise CaseNotFound(case_id)
            transition = {"replacement": "ship_replacement", "repair": "repair"}.get(case.remedy)
            if transition is None:
                raise CaseConflict(f"a {case.remedy} case is completed by RLS, not by a fulfilment")
            if kind is not None and kind != case.remedy:
                raise CaseConflict(f"this case asks for a {case.remedy}, not a {kind}")
            apply(case.state, transition)
            if case.waiting_for != "seller":
                raise CaseConflict(f"the case is waiting for its {case.waiting_for}")
            session.add(
                Fulfilment(
                    case_id=case_id,
                    kind=case.remedy,
                    tracking_number=tracking_number,
                    note=note,
                    by_key_id=key_id,
                )
            )
            case.waiting_for = None
            await self._bill_fee(session, case)
            await self.transition(session, case, transition)

    async def reject(self, case_id: str, reason: str) -> None:
        async with self._sf()() as session, session.begin():
            case = await self._locked_case(session, case_id)
            if case.waiting_for == "payment":
                raise CaseConflict(
                    "a refund is being paid for this case; it can no longer be rejected"
                )
            case.waiting_for = None
            await self.transition(session, case, "reject", reason=reason)

    async def close(
        self, case_id: str, may_act: Callable[[AsyncSession, Case], Awaitable[bool]]
    ) -> None:
        async with self._sf()() as session, session.begin():
            case = await self._locked_case(session, case_id)
            if not await may_act(session, case):
                raise CaseNotFound(case_id)
            await self.transition(session, case, "close")

    # ------------------------------------------------------------------ refunds, exactly once

    async def _plan_refund(self, session: AsyncSession, case: Case) -> None:
        """Step 1: the refund intents of a case, in the caller's transaction."""
        alert = (
            await session.execute(
                select(KnownAlert).where(KnownAlert.alert_id == case.alert_id).with_for_update()
            )
        ).scalar_one()
        lines = [ev.AffectedLine.model_validate(line) for line in alert.lines]
        already = dict(
            (
                await session.execute(
                    select(Refund.line_id, func.sum(Refund.amount))
                    .where(
                        Refund.line_id.in_([line.line_id for line in lines]),
                        Refund.status.in_(("pending", "paid")),
                    )
                    .group_by(Refund.line_id)
                )
            ).all()
        )
        by_line = {line.line_id: line for line in lines}
        due = refunds_due(lines, already)
        if not due:
            if case.state == "requested":
                await self.transition(
                    session,
                    case,
                    "reject",
                    reason="nothing left to refund: the affected units were already refunded",
                )
            else:
                case.reason = "nothing left to refund: the affected units were already refunded"
            return
        for d in due:
            key = f"refund:{case.case_id}:{d.line_id}"
            await session.execute(
                insert(Refund)
                .values(
                    refund_id=str(uuid.uuid5(CASE_NAMESPACE, key)),
                    case_id=case.case_id,
                    line_id=d.line_id,
                    order_id=by_line[d.line_id].order_id,
                    idempotency_key=key,
                    amount=d.amount,
                    currency=d.currency,
                    status="pending",
                    provider_ref=None,
                )
                .on_conflict_do_nothing()
            )
        case.waiting_for = "payment"
        case.updated_at = datetime.now(UTC)

    async def settle(self, case_id: str) -> bool:
        """Steps 2-4 for a case's pending refunds; False when another caller holds them (or none
        are pending)."""
        async with self._sf()() as session, session.begin():
            claimed = (
                await session.execute(
                    update(Refund)
                    .where(
                        Refund.case_id == case_id,
                        Refund.status == "pending",
                        (Refund.claimed_until.is_(None)) | (Refund.claimed_until < func.now()),
                    )
                    .values(
                        claimed_until=func.now() + timedelta(seconds=self.refund_lease_s),
                        attempts=Refund.attempts + 1,
                    )
                    .returning(
                        Refund.refund_id,
                        Refund.idempotency_key,
                        Refund.amount,
                        Refund.currency,
                        Refund.line_id,
                        Refund.order_id,
                    )
                )
            ).all()
        if not claimed:
            return False
        await self.fault("before_provider_call", case_id)
        paid: dict[str, tuple[str, Decimal, str, str]] = {}
        failed: dict[str, str] = {}
        for refund_id, key, amount, currency, line_id, order_id in claimed:
            try:
                result = await self.payments.refund(
                    idempotency_key=key,
                    amount=amount,
                    currency=currency,
                    reference=case_id,
                    order_id=order_id,
                    line_id=line_id,
                )
            except PaymentError as exc:
                log.warning(
                    "refund not paid",
                    extra={"case_id": case_id, "transient": exc.transient, "error": str(exc)[:500]},
                )
                if not exc.transient:
                    failed[refund_id] = str(exc)[:2000]
                # Transient: the lease runs out and the recovery loop tries again with the same key.
                continue
            paid[refund_id] = (result.provider_ref, result.amount, result.currency, result.method)
        await self.fault("after_provider_call", case_id)
        await self._record(case_id, paid, failed)
        await self.fault("after_commit", case_id)
        return bool(paid)

    async def _record(
        self, case_id: str, paid: dict[str, tuple[str, Decimal, str, str]], failed: dict[str, str]
    ) -> None:
        async with self._sf()() as session, session.begin():
            case = await self._locked_case(session, case_id)
            for refund_id, (ref, amount, paid_currency, method) in paid.items():
                await session.execute(
                    update(Refund)
                    .where(Refund.refund_id == refund_id, Refund.status == "pending")
                    .values(
                        status="paid",
                        provider_ref=ref,
                        amount=amount,
                        currency=paid_currency,
                        method=method,
                        paid_at=func.now(),
                        claimed_until=None,
                        last_error=None,
                    )
                )
            for refund_id, error in failed.items():
                await session.execute(
                    update(Refund)
                    .where(Refund.refund_id == refund_id, Refund.status == "pending")
                    .values(status="failed", last_error=error, claimed_until=None)
                )
            if paid:
                await self.fault("after_refund_row", case_id)
            rows = (
                await session.execute(
                    select(Refund.status, Refund.amount, Refund.currency).where(
                        Refund.case_id == case_id
                    )
                )
            ).all()
            if any(s == "pending" for s, _, _ in rows) or case.waiting_for != "payment":
                return
            if any(s == "failed" for s, _, _ in rows):
                case.waiting_for = "operator"
                case.reason = (
                    "the payment provider refused a refund: " + "; ".join(failed.values())[:1500]
                )
                return
            total = sum((a for s, a, _ in rows if s == "paid"), Decimal("0"))
            currency = next((c for s, _, c in rows if s == "paid"), case.currency)
            case.refunded_amount = total
            case.currency = currency
            case.waiting_for = None
            await session.execute(
                insert(LedgerEntry)
                .values(
                    seller_id=case.seller_id,
                    case_id=case_id,
                    kind="refund_paid",
                    amount=total,
                    currency=currency,
                )
                .on_conflict_do_nothing()
            )
            await self._bill_fee(session, case)
            await self.transition(session, case, "issue_refund")

    async def _bill_fee(self, session: AsyncSession, case: Case) -> None:
        currency = case.currency
        if currency is None:
            alert = await session.get(KnownAlert, case.alert_id)
            currency = alert.lines[0]["currency"] if alert is not None and alert.lines else "EUR"
        await session.execute(
            insert(LedgerEntry)
            .values(
                seller_id=case.seller_id,
                case_id=case.case_id,
                kind="fee",
                amount=self.case_fee,
                currency=currency,
            )
            .on_conflict_do_nothing()
        )

    # ------------------------------------------------------------------ recovery

    async def recover(self) -> int:
        """Settle refund intents whose lease ran out (a crash, a transient failure) and retry return
        labels the carrier could not issue. Returns how many cases were looked at."""
        async with self._sf()() as session:
            case_ids = list(
                (
                    await session.execute(
                        select(Refund.case_id)
                        .where(
                            Refund.status == "pending",
                            (Refund.claimed_until.is_(None)) | (Refund.claimed_until < func.now()),
                        )
                        .distinct()
                        .limit(200)
                    )
                ).scalars()
            )
            label_ids = list(
                (
                    await session.execute(
                        select(Case.case_id)
                        .where(
                            Case.waiting_for == "label",
                            Case.updated_at < func.now() - timedelta(seconds=self.refund_lease_s),
                        )
                        .limit(200)
                    )
                ).scalars()
            )
        for case_id in case_ids:
            try:
                await self.settle(case_id)
            except Exception:
                log.exception("refund recovery failed", extra={"case_id": case_id})
        for case_id in label_ids:
            try:
                async with self._sf()() as session, session.begin():
                    case = await self._locked_case(session, case_id)
                    alert = await session.get(KnownAlert, case.alert_id)
                    if case.waiting_for == "label" and alert is not None:
                        case.updated_at = datetime.now(UTC)
                        await self._issue_label(session, case, alert, None)
            except Exception:
                log.exception("label recovery failed", extra={"case_id": case_id})
        return len(case_ids) + len(label_ids)

    async def recovery_loop(self, interval_s: float, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            try:
                await self.recover()
            except Exception:
                log.exception("recovery pass failed")
            await wait_set(stopping, interval_s)

    def handlers(self) -> HandlerMap:
        # One object per batch form: the runner hands a run of consecutive deliveries registered
        # to the same object to its handle_many in one call (raised and updated interleave in one).
        alerts = batched(self.on_alerts)
        notices = batched(self.on_notices)
        return {
            ev.RecallPublished: self.on_recall,
            ev.RecallAmended: self.on_recall,
            ev.RecallClosed: self.on_recall,
            ev.AlertRaised: alerts,
            ev.AlertUpdated: alerts,
            ev.AlertWithdrawn: batched(self.on_alerts_withdrawn),
            ev.AlertClosed: batched(self.on_alerts_closed),
            ev.NoticeSent: notices,
            ev.NoticeFailed: notices,
            ev.RemedyRequested: self.on_remedy_requested,
            ev.NotAffectedDeclared: self.on_not_affected,
        }
