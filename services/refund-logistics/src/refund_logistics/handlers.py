"""refund-logistics' consumers: recall and alert read models; remedy requests become cases."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from recall_shared import events as ev
from recall_shared.envelope import Envelope
from recall_shared.outbox import Outbox
from refund_logistics.domain import apply, refunds_due
from refund_logistics.models import Case, CaseTransition, KnownAlert, KnownRecall, LedgerEntry, Refund
from refund_logistics.payments import PaymentProvider

CASE_NAMESPACE = uuid.UUID("3d1e4b8a-7c2f-4a9e-b6d0-8f5e2c1a9b34")


def case_id_for(request_id: str) -> str:
    return str(uuid.uuid5(CASE_NAMESPACE, request_id))


class Cases:
    def __init__(self, outbox: Outbox, payments: PaymentProvider, case_fee: Decimal) -> None:
        self.outbox = outbox
        self.payments = payments
        self.case_fee = case_fee

    async def transition(self, session: AsyncSession, case: Case, name: str, env: Envelope, reason: str | None = None) -> None:
        previous = case.state if name != "open" else None
        case.state = apply(previous, name)
        case.updated_at = datetime.now(UTC)
        if reason is not None:
            case.reason = reason
        session.add(CaseTransition(case_id=case.case_id, transition=name, from_state=previous, to_state=case.state, at=case.updated_at))
        await session.flush()
        await self.outbox.add(
            session,
            ev.RemedyCaseTransitioned(
                case_id=case.case_id, request_id=case.request_id, alert_id=case.alert_id, customer_id=case.customer_id,
                recall_id=case.recall_id, seller_id=case.seller_id, remedy=case.remedy,  # type: ignore[arg-type]
                transition=name, from_state=previous, state=case.state,  # type: ignore[arg-type]
                refunded_amount=case.refunded_amount, currency=case.currency, reason=case.reason,
                occurred_at=case.updated_at,
            ),
            causation_id=env.id,
            # Deterministic, and short enough for the 64-character outbox/inbox event ids: the readable
            # "case:{case_id}:{transition}:{from}" is up to 68 characters (e.g. refer_to_seller).
            event_id=f"case:{uuid.uuid5(CASE_NAMESPACE, f'{case.case_id}:{name}:{previous}')}",
        )

    # ------------------------------------------------------------------ read models

    async def on_recall(self, session: AsyncSession, event: ev.RecallPublished | ev.RecallAmended | ev.RecallClosed, env: Envelope) -> None:
        snap = event.recall
        values = {
            "recall_id": snap.recall_id, "seller_id": snap.seller_id, "version": snap.version,
            "status": "closed" if isinstance(event, ev.RecallClosed) else "active",
            "logistics_enrolled": snap.logistics_enrolled, "consumer_contact": snap.content.consumer_contact,
        }
        stmt = insert(KnownRecall).values(**values)
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=["recall_id"], set_={k: stmt.excluded[k] for k in values},
                where=KnownRecall.version <= stmt.excluded.version,
            )
        )
        await self._resume(session, env, recall_id=snap.recall_id)

    async def on_alert(self, session: AsyncSession, event: ev.AlertRaised | ev.AlertUpdated, env: Envelope) -> None:
        a = event.alert
        values = {
            "alert_id": a.alert_id, "customer_id": a.customer_id, "recall_id": a.recall_id,
            "alert_version": a.alert_version, "status": "open", "lines": [l.model_dump(mode="json") for l in a.lines],
        }
        stmt = insert(KnownAlert).values(**values)
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=["alert_id"], set_={k: stmt.excluded[k] for k in values},
                where=KnownAlert.alert_version <= stmt.excluded.alert_version,
            )
        )
        await self._resume(session, env, alert_id=a.alert_id)

    async def on_alert_withdrawn(self, session: AsyncSession, event: ev.AlertWithdrawn, env: Envelope) -> None:
        alert = await session.get(KnownAlert, event.alert_id)
        if alert is not None and alert.alert_version < event.alert_version:
            alert.status = "withdrawn"
            alert.alert_version = event.alert_version

    # ------------------------------------------------------------------ cases

    async def on_remedy_requested(self, session: AsyncSession, event: ev.RemedyRequested, env: Envelope) -> None:
        case_id = case_id_for(event.request_id)
        if await session.get(Case, case_id) is not None:
            return
        recall = await session.get(KnownRecall, event.recall_id)
        case = Case(
            case_id=case_id, request_id=event.request_id, alert_id=event.alert_id, customer_id=event.customer_id,
            recall_id=event.recall_id, seller_id=recall.seller_id if recall else None, remedy=event.remedy,
            state="requested", refunded_amount=Decimal("0"),
        )
        session.add(case)
        await self.transition(session, case, "open", env)
        await self._advance(session, case, env)

    async def _resume(self, session: AsyncSession, env: Envelope, *, alert_id: str | None = None, recall_id: str | None = None) -> None:
        """Cases that arrived before their alert or recall go on once both are known."""
        stmt = select(Case).where(Case.waiting_for.is_not(None)).with_for_update()
        stmt = stmt.where(Case.alert_id == alert_id) if alert_id else stmt.where(Case.recall_id == recall_id)
        for case in (await session.execute(stmt)).scalars():
            await self._advance(session, case, env)

    async def _advance(self, session: AsyncSession, case: Case, env: Envelope) -> None:
        recall = await session.get(KnownRecall, case.recall_id)
        alert = await session.get(KnownAlert, case.alert_id)
        if recall is None or alert is None:
            case.waiting_for = "recall" if recall is None else "alert"
            return
        case.waiting_for = None
        case.seller_id = recall.seller_id
        if alert.customer_id != case.customer_id:
            await self.transition(session, case, "reject", env, reason="the alert belongs to another customer")
            return
        if not recall.logistics_enrolled:
            contact = recall.consumer_contact or "the seller"
            await self.transition(session, case, "refer_to_seller", env, reason=f"The seller handles this remedy directly. Contact: {contact}")
            return
        if case.remedy == "refund_on_destruction":
            await self.refund(session, case, alert, env)
        elif case.remedy == "refund_with_return":
            await self.transition(session, case, "issue_label", env)
        # replacement and repair wait for the seller's fulfilment

    async def refund(self, session: AsyncSession, case: Case, alert: KnownAlert, env: Envelope) -> None:
        lines = [ev.AffectedLine.model_validate(l) for l in alert.lines]
        already = dict(
            (await session.execute(
                select(Refund.line_id, func.sum(Refund.amount)).where(Refund.case_id == case.case_id).group_by(Refund.line_id)
            )).all()
        )
        total = Decimal("0")
        currency = None
        for due in refunds_due(lines, already):
            key = f"refund:{case.case_id}:{due.line_id}"
            result = await self.payments.refund(idempotency_key=key, amount=due.amount, currency=due.currency, reference=case.case_id)
            stmt = insert(Refund).values(
                refund_id=str(uuid.uuid5(CASE_NAMESPACE, key)), case_id=case.case_id, line_id=due.line_id,
                idempotency_key=key, amount=result.amount, currency=result.currency, provider_ref=result.provider_ref,
            ).on_conflict_do_nothing()
            await session.execute(stmt)
            total += result.amount
            currency = result.currency
        case.refunded_amount = (case.refunded_amount or Decimal("0")) + total
        case.currency = currency or case.currency
        if total > 0 and currency:
            for kind, amount in (("refund_paid", total), ("fee", self.case_fee)):
                await session.execute(
                    insert(LedgerEntry).values(seller_id=case.seller_id, case_id=case.case_id, kind=kind, amount=amount, currency=currency)
                    .on_conflict_do_nothing()
                )
        await self.transition(session, case, "issue_refund", env)

    def handlers(self) -> dict:
        return {
            ev.RecallPublished: self.on_recall,
            ev.RecallAmended: self.on_recall,
            ev.RecallClosed: self.on_recall,
            ev.AlertRaised: self.on_alert,
            ev.AlertUpdated: self.on_alert,
            ev.AlertWithdrawn: self.on_alert_withdrawn,
            ev.RemedyRequested: self.on_remedy_requested,
        }
