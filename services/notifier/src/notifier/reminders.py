"""Reminders: customers who have neither chosen a remedy nor answered "not affected" are reminded on
a schedule (``Settings.reminder_schedule_days``, by default 7 and 30 days after their initial notice
was sent).

The sender starts a recipient's schedule when it records the initial notice as sent. The scheduler
queues reminder notices as they fall due by the injected :class:`~notifier.clock.Clock`; each is an
ordinary notice of kind "reminder" with its number in the unique key, so a second scheduler, a
restart or a repeated tick never queues one twice. A remedy request, a remedy case, a "not affected"
answer, a withdrawal or a closed alert stops the schedule (handlers.stop_reminders) and cancels a
reminder not yet sent. When the service was down past several due dates, only the latest due
reminder is sent.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notifier import remedy_reminders
from notifier.clock import Clock, SystemClock
from notifier.handlers import queue_notice
from notifier.notice_traces import continue_alert_traces
from notifier.settings import Settings
from recall_shared.cancellation import is_failure
from recall_shared.waits import wait_set

log = logging.getLogger(__name__)

_DUE = text(
    """
    SELECT r.alert_id, r.recipient_customer_id, r.customer_id, r.recipient_role, r.base_at,
    r.next_no,
           a.status AS alert_status, a.alert_version,
           (SELECT x.response FROM alert_responses x WHERE x.alert_id = r.alert_id) AS response
    FROM reminders r JOIN alerts a ON a.alert_id = r.alert_id
    WHERE r.next_due_at IS NOT NULL AND r.next_due_at <= :now
    ORDER BY r.next_due_at LIMIT :n
    FOR UPDATE OF r SKIP LOCKED
    """
)
_ADVANCE = text(
    "UPDATE reminders SET next_no = :next_no, next_due_at = :due, stopped_reason = :reason "
    "WHERE alert_id = :alert_id AND recipient_customer_id = :recipient"
)


def due_number(base_at: datetime, now: datetime, schedule_days: tuple[float, ...]) -> int:
    """The highest reminder number (1-based) due at ``now``; 0 when none is."""
    n = 0
    for i, days in enumerate(schedule_days, start=1):
        if base_at + timedelta(days=days) <= now:
            n = i
    return n


class ReminderScheduler:
    def __init__(
        self,
        *,
        settings: Settings,
        session_factory: async_sessionmaker[AsyncSession],
        clock: Clock | None = None,
    ) -> None:
        self.settings = settings
        self.session_factory = session_factory
        self.clock = clock or SystemClock()
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    async def run(self, _runtime: object = None) -> None:
        while not self._stopping.is_set():
            try:
                await self.tick()
            except BaseException as exc:
                if not is_failure(exc):
                    raise
                log.exception("reminder scheduler failed; retrying")
            await wait_set(self._wake, self.settings.reminder_poll_s)
            self._wake.clear()

    async def tick(self, batch: int = 500) -> int:
        """Queue every reminder due now (choose-a-remedy and remedy-completion reminders); returns
        how many were queued."""
        queued = 0
        while True:
            n, q = await self._tick_batch(batch)
            queued += q
            if n < batch:
                break
        while True:
            n, q = await self._tick_cases_batch(batch)
            queued += q
            if n < batch:
                return queued

    async def _tick_cases_batch(self, batch: int) -> tuple[int, int]:
        """Remedy reminders (remedy_reminders.py): the latest one due of each case's schedule."""
        schedule = self.settings.remedy_reminder_days
        now = self.clock.now()
        queued_for: list[str] = []
        async with self.session_factory() as session, session.begin():
            rows = (await session.execute(remedy_reminders.DUE, {"now": now, "n": batch})).all()
            for r in rows:
                params = {"case_id": r.case_id}
                if r.alert_status != "open" or r.wait is None:
                    await session.execute(
                        remedy_reminders.ADVANCE,
                        {
                            **params,
                            "next_no": r.next_no,
                            "due": None,
                            "reason": r.alert_status,
                            "queued": 0,
                        },
                    )
                    continue
                number = remedy_reminders.due_count(r.since, now, schedule)
                sent_now = number >= r.next_no and await queue_notice(
                    session,
                    alert_id=r.alert_id,
                    customer_id=r.customer_id,
                    recipient_customer_id=r.customer_id,
                    role="purchaser",
                    kind="reminder",
                    alert_version=r.alert_version,
                    reminder_no=remedy_reminders.reminder_number(r.wait, r.queued),
                )
                if sent_now:
                    queued_for.append(r.alert_id)
                next_no = max(number, r.next_no - 1) + 1
                due = (
                    r.since + timedelta(days=schedule[next_no - 1])
                    if next_no <= len(schedule)
                    else None
                )
                await session.execute(
                    remedy_reminders.ADVANCE,
                    {
                        **params,
                        "next_no": next_no,
                        "due": due,
                        "reason": None if due else "schedule complete",
                        "queued": int(sent_now),
                    },
                )
            await continue_alert_traces(session, queued_for)  # the recall's trace
        return len(rows), len(queued_for)

    async def _tick_batch(self, batch: int) -> tuple[int, int]:
        schedule = self.settings.reminder_schedule_days
        now = self.clock.now()
        queued_for: list[str] = []
        async with self.session_factory() as session, session.begin():
            rows = (await session.execute(_DUE, {"now": now, "n": batch})).all()
            for r in rows:
                params = {"alert_id": r.alert_id, "recipient": r.recipient_customer_id}
                if r.alert_status != "open" or r.response:
                    reason = r.response or r.alert_status
                    await session.execute(
                        _ADVANCE, {**params, "next_no": r.next_no, "due": None, "reason": reason}
                    )
                    continue
                number = due_number(r.base_at, now, schedule)
                if number >= r.next_no and await queue_notice(
                    session,
                    alert_id=r.alert_id,
                    customer_id=r.customer_id,
                    recipient_customer_id=r.recipient_customer_id,
                    role=r.recipient_role,
                    kind="reminder",
                    alert_version=r.alert_version,
                    reminder_no=number,
                ):
                    queued_for.append(r.alert_id)
                    log.info(
                        "reminder queued",
                        extra={
                            "alert_id": r.alert_id,
                            "reminder_no": number,
                            "skipped": number - r.next_no,
                        },
                    )
                next_no = max(number, r.next_no - 1) + 1
                due = (
                    r.base_at + timedelta(days=schedule[next_no - 1])
                    if next_no <= len(schedule)
                    else None
                )
                await session.execute(
                    _ADVANCE,
                    {
                        **params,
                        "next_no": next_no,
                        "due": due,
                        "reason": None if due else "schedule complete",
                    },
                )
            await continue_alert_traces(session, queued_for)  # the recall's trace
        return len(rows), len(queued_for)
