"""Refunds, exactly once (RLS.md), across retries, redeliveries, concurrent requests and crashes:
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

import logging
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from recall_shared import events as ev
from refund_logistics.case_rows import CASE_NAMESPACE, locked_case
from refund_logistics.domain import (
    NOTHING_LEFT_TO_REFUND,
    nothing_due_rejects,
    refunds_due,
    settlement,
)
from refund_logistics.models import Case, KnownAlert, LedgerEntry, Refund
from refund_logistics.payments import PaymentError, PaymentProvider
from refund_logistics.transitions import CaseTransitions, Faults

log = logging.getLogger(__name__)


class RefundSteps:
    def __init__(
        self,
        transitions: CaseTransitions,
        payments: PaymentProvider,
        case_fee: Decimal,
        fault: Faults,
        *,
        session_factory: async_sessionmaker[AsyncSession] | None = None,
        refund_lease_s: float = 30.0,
    ) -> None:
        self.transitions = transitions
        self.payments = payments
        self.case_fee = case_fee
        self.fault = fault
        self.session_factory = session_factory
        self.refund_lease_s = refund_lease_s

    def _sf(self) -> async_sessionmaker[AsyncSession]:
        assert self.session_factory is not None, "the refund steps need a session factory"
        return self.session_factory

    async def plan(self, session: AsyncSession, case: Case) -> None:
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
            if nothing_due_rejects(case.state):
                await self.transitions.transition(
                    session, case, "reject", reason=NOTHING_LEFT_TO_REFUND
                )
            else:
                case.reason = NOTHING_LEFT_TO_REFUND
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
        later: dict[str, float] = {}  # a provider that asked to be called again only after a while
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
                elif exc.retry_after_s is not None and exc.retry_after_s > self.refund_lease_s:
                    later[refund_id] = exc.retry_after_s
                # Transient: the lease runs out (or the provider's Retry-After, when longer) and the
                # recovery loop tries again with the same key.
                continue
            paid[refund_id] = (result.provider_ref, result.amount, result.currency, result.method)
        await self.fault("after_provider_call", case_id)
        await self._record(case_id, paid, failed, later)
        await self.fault("after_commit", case_id)
        return bool(paid)

    async def _record(
        self,
        case_id: str,
        paid: dict[str, tuple[str, Decimal, str, str]],
        failed: dict[str, str],
        later: dict[str, float],
    ) -> None:
        """The provider's answers, in one transaction: paid and failed intents, the case settled
        when all are; an intent the provider asked to call again later (Retry-After) is held
        until then, so the recovery loop does not call it again at every lease's end."""
        async with self._sf()() as session, session.begin():
            case = await locked_case(session, case_id)
            for refund_id, seconds in later.items():
                await session.execute(
                    update(Refund)
                    .where(Refund.refund_id == refund_id, Refund.status == "pending")
                    .values(claimed_until=func.now() + timedelta(seconds=seconds))
                )
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
            outcome = settlement([s for s, _, _ in rows], case.waiting_for)
            if outcome in ("pending", "not_paying"):
                return
            if outcome == "failed":
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
            await self.bill_fee(session, case)
            await self.transitions.transition(session, case, "issue_refund")

    async def bill_fee(self, session: AsyncSession, case: Case) -> None:
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

    async def due_for_recovery(self) -> list[str]:
        """Cases with refund intents whose lease ran out (a crash, a transient failure)."""
        async with self._sf()() as session:
            return list(
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
