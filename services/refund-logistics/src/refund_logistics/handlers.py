"""refund-logistics' service layer, put together: the read models (projections.py), the case
lifecycle (lifecycle.py), proofs of destruction and their review (proofs.py) and the refund steps
(refund_steps.py), each case event written by transitions.py; the decisions are domain.py's.

Consumers: recalls, alerts (incl. withdrawals and closures), notices, remedy requests and
"not affected" answers (seller API keys: ``recall_shared.api_keys.key_handlers``, wired in app.py).
Commands from the API: proof of destruction, item received, fulfilment, reject, close, enrolment.
Refunds are paid exactly once (refund_steps.py, RLS.md).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from recall_shared import events as ev
from recall_shared.handlers import HandlerMap, batched
from recall_shared.outbox import Outbox
from recall_shared.waits import wait_set
from refund_logistics.carrier import Carrier
from refund_logistics.case_rows import CaseNotFound, case_id_for
from refund_logistics.domain import CaseConflict
from refund_logistics.lifecycle import CaseLifecycle
from refund_logistics.models import Case
from refund_logistics.payments import PaymentProvider
from refund_logistics.projections import ReadModels
from refund_logistics.proofs import Proofs
from refund_logistics.refund_steps import RefundSteps
from refund_logistics.transitions import FAULT_POINTS, CaseTransitions, FaultHook, Faults

__all__ = ["FAULT_POINTS", "CaseConflict", "CaseNotFound", "Cases", "case_id_for"]

log = logging.getLogger(__name__)


class Cases:
    """The parts, wired once; what app.py, the API and the consumers use."""

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
        pay_without_review_up_to: Decimal = Decimal("0"),
        fault: FaultHook | None = None,
    ) -> None:
        self.session_factory = session_factory
        self.faults = Faults(fault)
        self.transitions = CaseTransitions(outbox, self.faults)
        self.refunds = RefundSteps(
            self.transitions,
            payments,
            case_fee,
            self.faults,
            session_factory=session_factory,
            refund_lease_s=refund_lease_s,
        )
        self.lifecycle = CaseLifecycle(
            self.transitions,
            self.refunds,
            carrier,
            self.faults,
            session_factory=session_factory,
            return_warehouse=return_warehouse,
        )
        self.proofs = Proofs(
            self.transitions,
            self.refunds,
            self.faults,
            session_factory=session_factory,
            pay_without_review_up_to=pay_without_review_up_to,
        )
        self.read_models = ReadModels(self.lifecycle)

    # Knobs the exactly-once tests turn on a running service (a crash hook, a flaky provider, a
    # short lease).
    @property
    def fault(self) -> FaultHook:
        return self.faults.hook

    @fault.setter
    def fault(self, hook: FaultHook) -> None:
        self.faults.hook = hook

    @property
    def payments(self) -> PaymentProvider:
        return self.refunds.payments

    @payments.setter
    def payments(self, provider: PaymentProvider) -> None:
        self.refunds.payments = provider

    @property
    def refund_lease_s(self) -> float:
        return self.refunds.refund_lease_s

    @refund_lease_s.setter
    def refund_lease_s(self, seconds: float) -> None:
        self.refunds.refund_lease_s = seconds

    # ------------------------------------------------------------------ recovery

    async def recover(self) -> int:
        """Settle refund intents whose lease ran out (a crash, a transient failure), retry return
        labels the carrier could not issue and resume cases that missed their alert's arrival.
        Returns how many cases were looked at."""
        case_ids = await self.refunds.due_for_recovery()
        stalled = await self.lifecycle.stalled_cases()
        assert self.session_factory is not None
        async with self.session_factory() as session:
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
                await self.refunds.settle(case_id)
            except Exception:
                log.exception("refund recovery failed", extra={"case_id": case_id})
        for case_id in label_ids:
            try:
                await self.lifecycle.retry_label(case_id)
            except Exception:
                log.exception("label recovery failed", extra={"case_id": case_id})
        for case_id in stalled:
            log.warning(
                "resuming a case that missed its alert's arrival", extra={"case_id": case_id}
            )
            try:
                await self.lifecycle.resume_stalled(case_id)
            except Exception:
                log.exception("resuming a stalled case failed", extra={"case_id": case_id})
        return len(case_ids) + len(label_ids) + len(stalled)

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
        read = self.read_models
        alerts = batched(read.on_alerts)
        notices = batched(read.on_notices)
        return {
            ev.RecallPublished: read.on_recall,
            ev.RecallAmended: read.on_recall,
            ev.RecallClosed: read.on_recall,
            ev.AlertRaised: alerts,
            ev.AlertUpdated: alerts,
            ev.AlertWithdrawn: batched(read.on_alerts_withdrawn),
            ev.AlertClosed: batched(read.on_alerts_closed),
            ev.NoticeSent: notices,
            ev.NoticeSmsSent: notices,
            ev.NoticeLetterSent: notices,
            ev.NoticeFailed: notices,
            ev.NoticeDelivered: read.on_notice_reported,
            ev.NoticeBounced: read.on_notice_reported,
            ev.NoticeLetterReturned: read.on_notice_reported,
            ev.NoticeComplained: read.on_notice_reported,
            ev.RemedyRequested: self.lifecycle.on_remedy_requested,
            ev.NotAffectedDeclared: read.on_not_affected,
        }
