"""Reminders until a remedy is complete, not only until it is chosen (issue 14): a customer whose
case waits for them, for the photo of the destroyed unit or for the returned item, is reminded on a
schedule (``Settings.remedy_reminder_days``, by default 7 and 21 days after the wait began): proof
missing; label unused, then item not received.

remedies.v1 tells where each case stands (``remedy.case_transitioned.v1`` with ``waiting_for``,
and ``remedy.case_progressed.v1`` for a photo's review): a new wait starts its schedule afresh,
any other step pauses it, and the case's end (refunded, replaced, repaired, closed, rejected,
referred to the seller), an evaluated "not affected", a withdrawal or a closed alert stops it. The
reminders are ordinary notices of kind "reminder", numbered from :data:`REMEDY_REMINDER_FIRST` so
they never meet the choose-a-remedy reminders (1, 2, ...) in the notices' unique key; the scheduler
queues them by the injected clock, once each (see reminders.py).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from notifier.models import CaseReminder, Notice
from recall_shared.remedy_states import ENDED_CASE_STATES

# Reminder numbers: 101, 102, ... while the photo is missing; 201, 202, ... while the item is not
# back. Below 100: the choose-a-remedy reminders.
REMEDY_REMINDER_FIRST = 100
WAIT_BASE = {"proof": 100, "item": 200}
RemindedWait = Literal["proof", "item"]
# Reasons that stop a case's reminders for good (later case events do not restart them).
FINAL_STOPS = ("withdrawn", "closed", "not_affected", "referred_to_seller", *ENDED_CASE_STATES)


# ---------------------------------------------------------------------------- decisions (no I/O)


def reminded_wait(state: str, waiting_for: str | None) -> RemindedWait | None:
    """The wait a customer is reminded of, if the case is at one."""
    if state in ENDED_CASE_STATES or state == "referred_to_seller":
        return None
    if waiting_for == "proof":
        return "proof"
    if waiting_for == "item" and state == "label_issued":
        return "item"
    return None


def case_stopped(state: str) -> str | None:
    """Why reminders stop for good at this state (the case ended), else None."""
    if state in ENDED_CASE_STATES or state == "referred_to_seller":
        return state
    return None


def reminder_number(wait: RemindedWait, queued_before: int) -> int:
    """The next reminder's number: counted over the case's life, so a wait that starts again (a
    rejected photo) never reuses a number (the notices' unique key would drop it)."""
    return WAIT_BASE[wait] + queued_before + 1


def reminder_reason(reminder_no: int) -> str | None:
    """What a remedy reminder is about, from its number; None for a choose-a-remedy one."""
    if 100 < reminder_no < 200:
        return "proof_missing"
    if reminder_no == 201:
        return "label_unused"
    if reminder_no > 201:
        return "item_not_received"
    return None


def due_count(since: datetime, now: datetime, schedule_days: tuple[float, ...]) -> int:
    """How many reminders of the schedule are due at ``now`` (the latest one is sent)."""
    return sum(1 for days in schedule_days if since + timedelta(days=days) <= now)


# ---------------------------------------------------------------------------- the schedule's rows


async def track_case(
    session: AsyncSession,
    *,
    case_id: str,
    alert_id: str,
    customer_id: str,
    state: str,
    waiting_for: str | None,
    at: datetime,
) -> None:
    """Where the case stands now: a new wait restarts the schedule from ``at`` (due at once: the
    scheduler's next tick sets its first date from the settings); the same wait again changes
    nothing; anything else pauses (or, at the case's end, stops) it and cancels a remedy reminder
    not yet sent."""
    wait = reminded_wait(state, waiting_for)
    stopped = case_stopped(state)
    first_due = at if wait else None
    row = {
        "case_id": case_id,
        "alert_id": alert_id,
        "customer_id": customer_id,
        "wait": wait,
        "since": at,
        "next_no": 1,
        "next_due_at": first_due,
        "stopped_reason": stopped or (None if wait else f"waiting for {waiting_for or 'nothing'}"),
    }
    stmt = insert(CaseReminder).values(**row)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["case_id"],
            set_={k: stmt.excluded[k] for k in row if k != "case_id"},
            # A schedule stopped for good stays stopped; the same wait again keeps its schedule.
            where=(
                CaseReminder.stopped_reason.is_(None)
                | CaseReminder.stopped_reason.not_in(FINAL_STOPS)
            )
            & (
                stmt.excluded.next_due_at.is_(None)
                | CaseReminder.wait.is_distinct_from(stmt.excluded.wait)
            ),
        )
    )
    if not wait:
        await cancel_queued(session, alert_id, stopped or "the case moved on")


async def stop_cases_of_alert(session: AsyncSession, alert_id: str, reason: str) -> None:
    """A withdrawal, a closed alert, 'not affected': no more remedy reminders for its cases."""
    await session.execute(
        update(CaseReminder)
        .where(CaseReminder.alert_id == alert_id)
        .values(next_due_at=None, stopped_reason=reason)
    )
    await cancel_queued(session, alert_id, reason)


async def cancel_queued(session: AsyncSession, alert_id: str, reason: str) -> None:
    await session.execute(
        update(Notice)
        .where(
            Notice.alert_id == alert_id,
            Notice.kind == "reminder",
            Notice.reminder_no > REMEDY_REMINDER_FIRST,
            Notice.status.in_(("pending", "waiting_contact")),
        )
        .values(status="cancelled", last_error=f"remedy reminders stopped: {reason}")
    )


DUE = text(
    """
    SELECT r.case_id, r.alert_id, r.customer_id, r.wait, r.since, r.next_no, r.queued,
           a.status AS alert_status, a.alert_version
    FROM case_reminders r JOIN alerts a ON a.alert_id = r.alert_id
    WHERE r.next_due_at IS NOT NULL AND r.next_due_at <= :now
    ORDER BY r.next_due_at LIMIT :n
    FOR UPDATE OF r SKIP LOCKED
    """
)
ADVANCE = text(
    "UPDATE case_reminders SET next_no = :next_no, next_due_at = :due, stopped_reason = :reason, "
    "queued = queued + :queued WHERE case_id = :case_id"
)
