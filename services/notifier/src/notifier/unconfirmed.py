"""The fall back after N days: a sent email or SMS that nothing confirmed (no delivery report, no
complaint, no answer from the customer, the alert page not opened at the notice's version or
later: views.py) within the days the channel policy gives its recall's severity
(``domain.UNCONFIRMED_FALLBACK_DAYS``) is followed by a notice on the next channel
(``fallback.queue_fallback``: the same one a bounce would queue, so never a second of a channel).

Business time: the notice's ``sent_at`` against the injected clock, so tests move days with
``FakeClock``. Each sent notice is dealt with once (``followed_up``), whatever was decided.
Only where deliveries are reported (``fallback_when_unconfirmed``): with a relay that sends no
success reports, every email would look unconfirmed.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notifier.clock import Clock, SystemClock
from notifier.domain import UNCONFIRMED_FALLBACK_DAYS, opened_since, unconfirmed_fallback_due
from notifier.fallback import Unreached, queue_fallback
from notifier.settings import Settings
from recall_shared.waits import wait_set

log = logging.getLogger(__name__)

# The policy's days per severity come in as parameters (one fact, in domain.py); an unknown
# severity is treated as critical, as the policy does. A severity without a fall back (None) is
# selected at once and marked, so it is not looked at again.
_DUE = text(
    """
    SELECT n.notice_id, n.alert_id, n.customer_id, n.recipient_customer_id, n.recipient_role,
           n.kind, n.alert_version, n.reminder_no, n.channel, n.sent_at, n.delivery,
           a.status AS alert_status, a.state -> 'recall' ->> 'severity' AS severity,
           ct.phone, coalesce(ct.sms_opt_out, false) AS sms_opt_out,
           EXISTS (SELECT 1 FROM alert_responses r WHERE r.alert_id = n.alert_id) AS responded,
           (SELECT max(v.alert_version) FROM alert_views v
            WHERE v.alert_id = n.alert_id AND v.customer_id = n.recipient_customer_id)
             AS viewed_version
    FROM notices n
    LEFT JOIN alerts a ON a.alert_id = n.alert_id
    LEFT JOIN contacts ct ON ct.customer_id = n.recipient_customer_id
    JOIN unnest(CAST(:severities AS text[]), CAST(:days AS float8[])) AS p(severity, days)
      ON p.severity = coalesce(
          (SELECT s FROM unnest(CAST(:severities AS text[])) s
           WHERE s = a.state -> 'recall' ->> 'severity'),
          'critical')
    WHERE n.status = 'sent' AND n.delivery IS NULL AND NOT n.followed_up
      AND n.channel <> 'letter'
      AND n.sent_at <= CAST(:now AS timestamptz) - make_interval(secs => p.days * 86400)
    ORDER BY n.sent_at LIMIT :n
    FOR UPDATE OF n SKIP LOCKED
    """
)
_MARK = text("UPDATE notices SET followed_up = true WHERE notice_id = ANY(CAST(:ids AS text[]))")


class UnconfirmedFollowUp:
    def __init__(
        self,
        *,
        settings: Settings,
        session_factory: async_sessionmaker[AsyncSession],
        sms_available: bool,
        clock: Clock | None = None,
    ) -> None:
        self.settings = settings
        self.session_factory = session_factory
        self.sms_available = sms_available
        self.clock = clock or SystemClock()
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self, _runtime: object = None) -> None:
        while not self._stopping.is_set():
            try:
                while await self.follow_up() and not self._stopping.is_set():
                    pass
            except Exception:
                log.warning("following up unconfirmed notices failed", exc_info=True)
            await wait_set(self._stopping, self.settings.unconfirmed_poll_s)

    async def follow_up(self, batch: int = 500) -> int:
        """Deal with one batch of due notices; how many were looked at."""
        now = self.clock.now()
        severities = list(UNCONFIRMED_FALLBACK_DAYS)
        days = [UNCONFIRMED_FALLBACK_DAYS[s] or 0.0 for s in severities]
        queued = 0
        async with self.session_factory() as session, session.begin():
            rows = (
                await session.execute(
                    _DUE, {"severities": severities, "days": days, "now": now, "n": batch}
                )
            ).all()
            for row in rows:
                due = row.alert_status == "open" and unconfirmed_fallback_due(
                    channel=row.channel,
                    severity=row.severity,
                    kind=row.kind,
                    sent_at=row.sent_at,
                    delivery=row.delivery,
                    responded=bool(row.responded),
                    now=now,
                    opened=opened_since(row.alert_version, row.viewed_version),
                )
                if due and await queue_fallback(
                    session,
                    Unreached.of(row),
                    sms_available=self.sms_available,
                    letters_available=self.settings.letters_available,
                ):
                    queued += 1
            if rows:
                await session.execute(_MARK, {"ids": [r.notice_id for r in rows]})
        if queued:
            log.info("unconfirmed notices followed up on the next channel", extra={"n": queued})
        return len(rows)
