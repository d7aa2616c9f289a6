"""A remedy case's life: opened from a remedy request, moved on as its recall and alert become
known (domain.next_step), a return label from the carrier, and the API's commands (item received,
fulfilment, reject, close; proofs of destruction are proofs.py's). Refunds are the refund steps'
(their own file): this side plans them in the transaction that accepts the trigger and asks for
settlement after it commits."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import String, any_, bindparam, func, select, update
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from recall_shared import events as ev
from recall_shared.envelope import Envelope
from refund_logistics.carrier import Carrier, CarrierError
from refund_logistics.case_rows import (
    LOCK_RECALL_SHARED,
    CaseNotFound,
    case_id_for,
    locked_case,
)
from refund_logistics.domain import (
    WAITING_FOR_READ_MODEL,
    CaseFacts,
    check_rejectable,
    fulfilment_transition,
    item_already_received,
    label_failed,
    next_step,
)
from refund_logistics.models import (
    Case,
    Enrolment,
    Fulfilment,
    KnownAlert,
    KnownRecall,
    LedgerEntry,
    ReturnLabel,
)
from refund_logistics.refund_steps import RefundSteps
from refund_logistics.transitions import CaseTransitions, Faults

# The ids as one array parameter, not an IN list: a statement of constant text, compiled once
# (an IN list is rendered anew for every run of alerts, one bind parameter per id).
CASES_WAITING_FOR_ALERTS = (
    select(Case)
    .where(
        Case.waiting_for == any_(bindparam("waiting_for", type_=ARRAY(String))),
        Case.alert_id == any_(bindparam("alert_ids", type_=ARRAY(String))),
    )
    .with_for_update()
)


class CaseLifecycle:
    def __init__(
        self,
        transitions: CaseTransitions,
        refunds: RefundSteps,
        carrier: Carrier,
        fault: Faults,
        *,
        session_factory: async_sessionmaker[AsyncSession] | None = None,
        return_warehouse: str = "RLS returns centre",
    ) -> None:
        self.transitions = transitions
        self.refunds = refunds
        self.carrier = carrier
        self.fault = fault
        self.session_factory = session_factory
        self.return_warehouse = return_warehouse

    # ------------------------------------------------------------------ opening and moving on

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
        await self.transitions.transition(session, case, "open", cause=env.id)
        await self.advance(session, case, env.id)

    async def resume(
        self,
        session: AsyncSession,
        env: Envelope,
        *,
        alert_id: str | None = None,
        recall_id: str | None = None,
    ) -> None:
        """Cases that arrived before their alert or recall go on once both are known."""
        stmt = select(Case).where(Case.waiting_for.in_(WAITING_FOR_READ_MODEL)).with_for_update()
        stmt = (
            stmt.where(Case.alert_id == alert_id)
            if alert_id
            else stmt.where(Case.recall_id == recall_id)
        )
        for case in (await session.execute(stmt)).scalars():
            await self.advance(session, case, env.id)

    async def cases_waiting_for(
        self, session: AsyncSession, alert_ids: Collection[str]
    ) -> list[Case]:
        """The cases of these alerts that resume would go on with (locked, as it locks them)."""
        if not alert_ids:
            return []
        found = await session.execute(
            CASES_WAITING_FOR_ALERTS,
            {"waiting_for": list(WAITING_FOR_READ_MODEL), "alert_ids": sorted(alert_ids)},
        )
        return list(found.scalars())

    async def is_enrolled(self, session: AsyncSession, recall: KnownRecall) -> bool:
        """An explicit enrolment (API) wins over the flag the recall was published with."""
        explicit = await session.get(Enrolment, recall.recall_id)
        return explicit.enrolled if explicit is not None else recall.logistics_enrolled

    async def advance(self, session: AsyncSession, case: Case, cause: str | None) -> None:
        await session.execute(LOCK_RECALL_SHARED, {"id": case.recall_id})
        recall = await session.get(KnownRecall, case.recall_id)
        alert = await session.get(KnownAlert, case.alert_id)
        step = next_step(
            CaseFacts(
                remedy=case.remedy,
                customer_id=case.customer_id,
                recall_id=case.recall_id,
                recall_known=recall is not None,
                alert_known=alert is not None,
                alert_customer_id=alert.customer_id if alert else None,
                alert_recall_id=alert.recall_id if alert else None,
                alert_status=alert.status if alert else None,
                enrolled=recall is not None and await self.is_enrolled(session, recall),
                consumer_contact=recall.consumer_contact if recall else "",
            )
        )
        if recall is not None and alert is not None:
            case.seller_id = recall.seller_id
            case.units = alert.units
        if step.action == "wait":
            case.waiting_for = step.waiting_for
            return
        case.waiting_for = None
        if step.action == "issue_label":
            assert alert is not None
            await self.issue_label(session, case, alert, cause)
            return
        await self.transitions.transition(
            session, case, step.action, cause=cause, reason=step.reason
        )

    async def issue_label(
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
            step = label_failed(exc.transient)
            if step.action == "wait":
                case.waiting_for = step.waiting_for  # the recovery loop asks again, same key
                case.reason = f"waiting for the carrier: {exc}"[:2000]
                return
            await self.transitions.transition(
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
        await self.transitions.transition(
            session,
            case,
            "issue_label",
            cause=cause,
            label=ev.ReturnLabelRef(
                tracking_number=label.tracking_number,
                label_url=label.label_url,
                carrier_ref=label.carrier_ref,
            ),
        )

    async def stalled_cases(self, limit: int = 200) -> list[str]:
        """Cases still waiting for their alert or recall though both are known: a remedy request
        whose transaction read the alert as missing while the alert's own committed, each
        unseen by the other (read committed, two partitions). The recovery loop resumes them."""
        async with self._sf()() as session:
            found = await session.execute(
                select(Case.case_id)
                .join(KnownAlert, KnownAlert.alert_id == Case.alert_id)
                .join(KnownRecall, KnownRecall.recall_id == Case.recall_id)
                .where(Case.waiting_for.in_(WAITING_FOR_READ_MODEL))
                .limit(limit)
            )
            return list(found.scalars())

    async def resume_stalled(self, case_id: str) -> None:
        """The recovery loop: a stalled case goes on as the alert's arrival would have taken it."""
        async with self._sf()() as session, session.begin():
            case = await locked_case(session, case_id)
            if case.waiting_for in WAITING_FOR_READ_MODEL:
                await self.advance(session, case, None)

    async def retry_label(self, case_id: str) -> None:
        """The recovery loop: ask the carrier again for a label it could not issue."""
        async with self._sf()() as session, session.begin():
            case = await locked_case(session, case_id)
            alert = await session.get(KnownAlert, case.alert_id)
            if case.waiting_for == "label" and alert is not None:
                case.updated_at = datetime.now(UTC)
                await self.issue_label(session, case, alert, None)

    # ------------------------------------------------------------------ commands (API)

    def _sf(self) -> async_sessionmaker[AsyncSession]:
        assert self.session_factory is not None, "the case lifecycle needs a session factory"
        return self.session_factory

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
        if item_already_received(seen.remedy, seen.state):
            if seen.waiting_for == "payment":
                await self.refunds.settle(case_id)
            return
        async with self._sf()() as session, session.begin():
            case = await locked_case(session, case_id)
            if not item_already_received(case.remedy, case.state):  # else a repeated webhook
                await self.transitions.transition(session, case, "receive_item")
                await session.execute(
                    update(ReturnLabel)
                    .where(ReturnLabel.case_id == case_id)
                    .values(received_at=func.now())
                )
                await self.refunds.plan(session, case)
                await self.fault("after_intent", case_id)
        await self.refunds.settle(case_id)

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
            case = await locked_case(session, case_id)
            if not await may_act(session, case):
                raise CaseNotFound(case_id)
            transition = fulfilment_transition(case.remedy, kind, case.state, case.waiting_for)
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
            await self.refunds.bill_fee(session, case)
            await self.transitions.transition(session, case, transition)

    async def reject(self, case_id: str, reason: str) -> None:
        async with self._sf()() as session, session.begin():
            case = await locked_case(session, case_id)
            check_rejectable(case.waiting_for)
            case.waiting_for = None
            await self.transitions.transition(session, case, "reject", reason=reason)

    async def close(
        self, case_id: str, may_act: Callable[[AsyncSession, Case], Awaitable[bool]]
    ) -> None:
        async with self._sf()() as session, session.begin():
            case = await locked_case(session, case_id)
            if not await may_act(session, case):
                raise CaseNotFound(case_id)
            await self.transitions.transition(session, case, "close")
