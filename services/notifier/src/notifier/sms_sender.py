"""The SMS sender: claims due SMS notices (the email sender's fallbacks), words them, sends them
through the :class:`~notifier.sms.SmsProvider` and records the result with its event.

    pending --claim--> sending --accepted--> sent (+ notification.sms_sent.v1)
                          |--refused for good (bad number)--> failed, bounced hard
                          |                                   (+ notification.bounced.v1)
                          |--transient error--> pending, retried with backoff; once attempts
                          |                     are used up: failed, bounced soft (+ bounced.v1)
                          '--lease expired (the sender died)--> claimed again (at least once)

What became of a sent SMS comes back on the provider's status callback (``webhook.py``): delivered,
or undelivered/failed (a hard bounce). An SMS API, like SMTP, takes no idempotency key: a crash
between the provider's answer and our commit sends the text again, the lesser harm for a safety
notice.

Each send is an ``sms send`` client span of the trace the notice keeps (its alert event's, copied
onto the fallback: notifier.notice_traces), as the email's ``smtp send``; the adapter adds the HTTP
request's attributes to it.

**As the email sender does** (:mod:`notifier.group_commit`): ``sms_concurrency`` requests are in
flight at once, the next batch is claimed while half of the current one is still unsent, and the
outcomes of everything that finished meanwhile are committed in one transaction (one UPDATE for the
sent ones, their events in one outbox insert), so no request waits on a claim or a commit. A
notice still waiting for a request slot when its lease ends is released, not sent (another sender
may hold it by then); an outcome is recorded only for the claim it belongs to (``attempts``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Tracer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notifier.clock import Clock, SystemClock
from notifier.domain import ClaimedNotice, Hold, decide_sms, reported_role, retry_delay_s
from notifier.fallback import SMS_SENDER_CHANNEL, Unreached, queue_fallback
from notifier.group_commit import GroupCommitFlow
from notifier.notice_traces import send_parent
from notifier.render import catalogs, localized
from notifier.settings import Settings
from notifier.sms import SmsError, SmsProvider
from recall_shared import events as ev
from recall_shared.db import asyncpg_dsn
from recall_shared.i18n import pick_locale
from recall_shared.listening import keep_listening
from recall_shared.outbox import Outbox
from recall_shared.validation import strip_bidi_controls
from recall_shared.waits import wait_set

log = logging.getLogger(__name__)


_CLAIM = text(
    """
    WITH due AS (
        SELECT notice_id FROM notices
        WHERE channel = 'sms' AND status IN ('pending', 'sending') AND next_attempt_at <= now()
          AND notice_id <> ALL(CAST(:held AS text[]))
        ORDER BY next_attempt_at LIMIT :n FOR UPDATE SKIP LOCKED),
    claimed AS (
        UPDATE notices n SET attempts = n.attempts + 1, status = 'sending', sending_at = now(),
            next_attempt_at = now() + make_interval(secs => :lease)
        FROM due WHERE n.notice_id = due.notice_id
        RETURNING n.*)
    SELECT c.notice_id, c.attempts, c.alert_id, c.customer_id, c.recipient_role, c.kind,
           c.alert_version, c.recipient_customer_id, c.reminder_no, c.traceparent, c.tracestate,
           a.status AS alert_status, a.state, ct.phone, ct.sms_opt_out, ct.locale,
           EXISTS (SELECT 1 FROM alert_responses r WHERE r.alert_id = c.alert_id) AS responded
    FROM claimed c
    LEFT JOIN alerts a ON a.alert_id = c.alert_id
    LEFT JOIN contacts ct ON ct.customer_id = c.recipient_customer_id
    """
)
_SENT = text(
    """
    UPDATE notices n SET status = 'sent', sent_at = v.at, sent_to = v.sent_to, message_id = v.sid,
        last_error = NULL
    FROM unnest(CAST(:ids AS text[]), CAST(:attempts AS int[]), CAST(:tos AS text[]),
                CAST(:sids AS text[]), CAST(:ats AS timestamptz[]))
         AS v(notice_id, attempts, sent_to, sid, at)
    WHERE n.notice_id = v.notice_id AND n.attempts = v.attempts AND n.status = 'sending'
    RETURNING n.notice_id
    """
)
# One claim's outcome: only while the notice is still in that claim (status and attempts).
_OURS = "WHERE notice_id = :id AND attempts = :attempt AND status = 'sending'"
_FAILED = text(
    """
    UPDATE notices SET status = 'failed', last_error = :err, delivery = 'bounced',
        bounce_type = :bounce_type, delivery_status = :code, delivery_detail = :err,
        delivery_at = :at
    """
    + _OURS
    + " RETURNING notice_id"
)
_RETRY = text(
    """
    UPDATE notices SET status = 'pending', last_error = :err,
        next_attempt_at = now() + make_interval(secs => :delay)
    """
    + _OURS
)
_HOLD = text("UPDATE notices SET status = :st, last_error = :err " + _OURS)
_RELEASE = text("UPDATE notices SET status = 'pending', next_attempt_at = now() " + _OURS)


def sms_text(state: ev.AlertState, kind: str, portal_url: str, locale: str | None = None) -> str:
    """The notice as one SMS, in the customer's language (the notices' gettext catalogs): what,
    stop using it, where to act. Short (one or two segments), no seller-written text beyond the
    title (in the customer's language when the recall has it), which is cut and cleaned of
    controls."""
    s = catalogs().messages(pick_locale(locale))
    title = localized(state.recall, locale).title
    title = " ".join(strip_bidi_controls(title).split())
    if len(title) > 60:
        title = title[:59] + "…"
    link = f"{portal_url.rstrip('/')}/recalls/{state.alert_id}"
    if kind == "withdrawal":
        return s["sms.withdrawal"].format(title=title, link=link)
    what = s["sms.safety_alert" if state.recall.kind == "safety_alert" else "sms.recall"]
    return f"{what.format(title=title)} {s['sms.remedy'].format(link=link)}"


@dataclass
class _Job:
    row: Any
    lease_ends: float  # monotonic: after this another sender may hold the notice


@dataclass
class _Outcome:
    job: _Job
    status: str  # sent | hold | retry | failed | released
    at: datetime
    state: ev.AlertState | None = None
    to: str = ""
    sid: str = ""
    role: str = ""
    hold_status: str = ""
    reason: str = ""
    delay_s: float = 0.0
    bounce_type: str = ""
    code: str = ""


class SmsSender:
    def __init__(
        self,
        *,
        settings: Settings,
        session_factory: async_sessionmaker[AsyncSession],
        outbox: Outbox,
        provider: SmsProvider,
        clock: Clock | None = None,
        tracer: Tracer | None = None,
    ) -> None:
        self.settings = settings
        self.tracer = tracer or trace.NoOpTracer()
        self.session_factory = session_factory
        self.outbox = outbox
        self.provider = provider
        self.clock = clock or SystemClock()
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        # Claimed by this sender's flow and not yet recorded: never claimed again by it, even when
        # the lease ran out meanwhile (a slow provider), so one flow sends a notice once.
        self._held: set[str] = set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def run(self, _runtime: object = None) -> None:
        try:
            await keep_listening(
                asyncpg_dsn(self.settings.database_url),
                SMS_SENDER_CHANNEL,
                self._flow_until_stopped,
                on_notify=self._wake.set,
                stopping=self._stopping,
                name="SMS sender",
                logger=log,
                retry_initial_s=1.0,
                retry_max_s=2.0,
            )
        finally:
            close = getattr(self.provider, "close", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    await close()

    def _flow(self) -> GroupCommitFlow[_Job, _Outcome]:
        return GroupCommitFlow(
            workers=self.settings.sms_concurrency,
            work=self._send,
            record=self._record,
            name="SMS sender",
        )

    async def _flow_until_stopped(self, listener: asyncpg.Connection) -> None:
        """Claim whenever no more than half a batch is left unsent; on stop, what is claimed is
        still sent and recorded."""
        batch = self.settings.sms_batch_size
        self._held.clear()  # a new flow: what the last one held is left to its lease

        async def claim(flow: GroupCommitFlow[_Job, _Outcome]) -> None:
            while not self._stopping.is_set() and not listener.is_closed():
                await flow.below(batch // 2)
                if self._stopping.is_set():
                    break
                self._wake.clear()
                if await self._claim_into(flow, batch):
                    continue
                await wait_set(self._wake, self.settings.sms_poll_s)

        await self._flow().run(claim)

    async def send_due(self) -> int:
        """Claim a batch of due SMS notices, send them and record the outcomes; how many were
        claimed."""
        claimed = 0
        self._held.clear()

        async def claim(flow: GroupCommitFlow[_Job, _Outcome]) -> None:
            nonlocal claimed
            claimed = await self._claim_into(flow, self.settings.sms_batch_size)

        await self._flow().run(claim)
        return claimed

    async def _claim_into(self, flow: GroupCommitFlow[_Job, _Outcome], limit: int) -> int:
        lease = self.settings.send_lease_s
        async with self.session_factory() as session, session.begin():
            lease_ends = time.monotonic() + lease
            rows = (
                await session.execute(
                    _CLAIM, {"n": limit, "lease": lease, "held": list(self._held)}
                )
            ).all()
        # A notice without its alert (never the case: both come with it) is left to its lease.
        jobs = [_Job(r, lease_ends) for r in rows if r.state is not None]
        self._held.update(j.row.notice_id for j in jobs)
        flow.feed(jobs)
        return len(rows)

    # ------------------------------------------------------------------ sending

    async def _send(self, job: _Job) -> _Outcome:
        """Decide, word and send one SMS (one of ``sms_concurrency`` in flight); what came of it."""
        row = job.row
        state = ev.AlertState.model_validate(row.state)
        decision = decide_sms(
            ClaimedNotice(
                kind=row.kind,
                recipient_role=row.recipient_role,
                alert_status=row.alert_status,
                responded=bool(row.responded),
                in_doubt=False,
                email=None,
                safety_email=None,
            ),
            None if row.sms_opt_out else row.phone,
        )
        if isinstance(decision, Hold):
            return _Outcome(
                job, "hold", self.clock.now(), hold_status=decision.status, reason=decision.reason
            )
        if time.monotonic() >= job.lease_ends:
            return _Outcome(job, "released", self.clock.now())
        callback = (
            f"{self.settings.public_url.rstrip('/')}/v1/webhooks/twilio?notice_id={row.notice_id}"
        )
        body = sms_text(state, row.kind, self.settings.customer_portal_url, row.locale)
        try:
            with self.tracer.start_as_current_span(
                "sms send",
                context=send_parent(row),  # the recall's trace (notifier.notice_traces)
                kind=SpanKind.CLIENT,
                attributes={"notice.id": row.notice_id},
            ):
                accepted = await self.provider.send(
                    to=decision.to, body=body, status_callback=callback
                )
        except SmsError as exc:
            return self._after_error(job, state, exc)
        return _Outcome(
            job,
            "sent",
            self.clock.now(),
            state=state,
            to=decision.to,
            sid=accepted.provider_id,
            role=decision.role,
        )

    def _after_error(self, job: _Job, state: ev.AlertState, exc: SmsError) -> _Outcome:
        at, reason = self.clock.now(), str(exc)[:2000]
        if not exc.permanent and job.row.attempts < self.settings.send_max_attempts:
            delay = retry_delay_s(
                job.row.attempts,
                initial_s=self.settings.send_backoff_initial_s,
                max_s=self.settings.send_backoff_max_s,
                jitter=random.uniform(0.9, 1.1),
            )
            return _Outcome(job, "retry", at, reason=reason, delay_s=delay)
        return _Outcome(
            job,
            "failed",
            at,
            state=state,
            reason=reason,
            bounce_type="hard" if exc.permanent else "soft",
            code=exc.code,
        )

    # ------------------------------------------------------------------ recording

    async def _record(self, outcomes: list[_Outcome]) -> None:
        """The outcomes of a batch in one transaction (a group commit)."""
        sent = [o for o in outcomes if o.status == "sent"]
        async with self.session_factory() as session, session.begin():
            if sent:
                await self._record_sent(session, sent)
            for o in outcomes:
                if o.status != "sent":
                    await self._record_other(session, o)
        self._held.difference_update(o.job.row.notice_id for o in outcomes)
        for o in sent:
            log.info("SMS notice sent", extra={"notice_id": o.job.row.notice_id, "sid": o.sid})

    async def _record_sent(self, session: AsyncSession, sent: list[_Outcome]) -> None:
        recorded = set(
            (
                await session.execute(
                    _SENT,
                    {
                        "ids": [o.job.row.notice_id for o in sent],
                        "attempts": [o.job.row.attempts for o in sent],
                        "tos": [o.to for o in sent],
                        "sids": [o.sid for o in sent],
                        "ats": [o.at for o in sent],
                    },
                )
            ).scalars()
        )
        events: list[tuple[ev.Event, str | None]] = []
        for o in sent:
            if o.job.row.notice_id in recorded:
                assert o.state is not None
                event = ev.NoticeSmsSent(
                    **self._common(o.job.row, o.state), **reported_role(o.role), sent_at=o.at
                )
                events.append((event, f"notice:{o.job.row.notice_id}:sent"))
        if events:
            await self.outbox.add_many(session, events)

    async def _record_other(self, session: AsyncSession, o: _Outcome) -> None:
        row = o.job.row
        ours = {"id": row.notice_id, "attempt": row.attempts}
        if o.status == "hold":
            await session.execute(_HOLD, {**ours, "st": o.hold_status, "err": o.reason or None})
        elif o.status == "released":
            await session.execute(_RELEASE, ours)
        elif o.status == "retry":
            await session.execute(_RETRY, {**ours, "err": o.reason, "delay": o.delay_s})
            log.warning("SMS send failed; will retry", extra={"notice_id": row.notice_id})
        elif o.status == "failed":
            await self._record_failed(session, o, ours)

    async def _record_failed(
        self, session: AsyncSession, o: _Outcome, ours: dict[str, Any]
    ) -> None:
        row, state = o.job.row, o.state
        assert state is not None
        values = {"err": o.reason, "bounce_type": o.bounce_type, "code": o.code[:20] or None}
        done = await session.execute(_FAILED, {**ours, **values, "at": o.at})
        if done.first() is None:
            return
        await self.outbox.add(
            session,
            ev.NoticeBounced(
                **self._common(row, state),
                channel="sms",
                bounce_type=o.bounce_type,
                status=o.code[:200],
                reason=o.reason,
                source="twilio",
                bounced_at=o.at,
            ),
            event_id=f"notice:{row.notice_id}:bounced",
        )
        await self._fall_back(session, row, state)
        log.error("SMS notice failed for good", extra={"notice_id": row.notice_id})

    async def _fall_back(self, session: AsyncSession, row: Any, state: ev.AlertState) -> None:
        """The SMS did not reach them: the channel after SMS (a letter), if the policy allows."""
        await queue_fallback(
            session,
            Unreached.of(row, severity=state.recall.severity, channel="sms"),
            sms_available=True,
            letters_available=self.settings.letters_available,
        )

    @staticmethod
    def _common(row: Any, state: ev.AlertState) -> dict[str, Any]:
        return {
            "notice_id": row.notice_id,
            "alert_id": row.alert_id,
            "customer_id": row.customer_id,
            "recall_id": state.recall_id,
            "kind": row.kind,
            "alert_version": row.alert_version,
        }
