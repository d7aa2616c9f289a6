"""A case's transition: the new state, its history row and its remedies.v1 event, in one
transaction (the outbox publishes the event once it commits)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from recall_shared import events as ev
from recall_shared.event_ids import hashed_event_id
from recall_shared.outbox import Outbox
from refund_logistics.case_rows import CASE_NAMESPACE
from refund_logistics.domain import apply
from refund_logistics.models import Case, CaseTransition

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


async def no_fault(point: str, case_id: str) -> None:
    return None


class Faults:
    """The fault hook every part of the case service calls: one holder, so a test that sets it
    reaches them all."""

    def __init__(self, hook: FaultHook | None = None) -> None:
        self.hook: FaultHook = hook or no_fault

    async def __call__(self, point: str, case_id: str) -> None:
        await self.hook(point, case_id)


class CaseTransitions:
    def __init__(self, outbox: Outbox, fault: Faults) -> None:
        self.outbox = outbox
        self.fault = fault

    async def transition(
        self,
        session: AsyncSession,
        case: Case,
        name: str,
        *,
        cause: str | None = None,
        reason: str | None = None,
        label: ev.ReturnLabelRef | None = None,
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
                waiting_for=case.waiting_for,
                label=label,
            ),
            causation_id=cause,
            # Hashed: the readable "case:{case_id}:{transition}:{from}" is up to 68 characters
            # (e.g. refer_to_seller), over the 64 of the outbox's and inboxes' event ids.
            event_id=hashed_event_id("case", CASE_NAMESPACE, f"{case.case_id}:{name}:{previous}"),
        )
        await self.fault("after_outbox", case.case_id)

    async def progress(
        self,
        session: AsyncSession,
        case: Case,
        step: ev.ProofStep,
        attempt: int,
        *,
        reason: str | None = None,
    ) -> None:
        """A step that leaves the state as it is (a proof's review): its remedies.v1 event."""
        case.updated_at = datetime.now(UTC)
        await self.outbox.add(
            session,
            ev.RemedyCaseProgressed(
                case_id=case.case_id,
                request_id=case.request_id,
                alert_id=case.alert_id,
                customer_id=case.customer_id,
                recall_id=case.recall_id,
                remedy=case.remedy,
                step=step,
                attempt=attempt,
                state=case.state,
                waiting_for=case.waiting_for,
                reason=reason,
                occurred_at=case.updated_at,
            ),
            event_id=hashed_event_id(
                "case-step", CASE_NAMESPACE, f"{case.case_id}:{step}:{attempt}"
            ),
        )
