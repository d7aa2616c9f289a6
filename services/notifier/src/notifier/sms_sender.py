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
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from typing import Any

import asyncpg
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Tracer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notifier.clock import Clock, SystemClock
from notifier.domain import ClaimedNotice, Hold, decide_sms, reported_role, retry_delay_s
from notifier.fallback import SMS_SENDER_CHANNEL, Unreached, queue_fallback
from notifier.notice_traces import send_parent
from notifier.render import catalogs, localized
from notifier.settings import Settings
from notifier.sms import SmsError, SmsProvider
from recall_shared import events as ev
from recall_shared.db import asyncpg_dsn
from recall_shared.i18n import pick_locale
from recall_shared.outbox import Outbox
from recall_shared.validation import strip_bidi_controls
from recall_shared.waits import wait_set

log = logging.getLogger(__name__)


_CLAIM = text(
    """
    WITH due AS (
        SELECT notice_id FROM notices
        WHERE channel = 'sms' AND status IN ('pending', 'sending') AND next_attempt_at <= now()
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
    UPDATE notices SET status = 'sent', sent_at = :at, sent_to = :to, message_id = :sid,
        last_error = NULL
    WHERE notice_id = :id AND status = 'sending' RETURNING notice_id
    """
)
_FAILED = text(
    """
    UPDATE notices SET status = 'failed', last_error = :err, delivery = 'bounced',
        bounce_type = :bounce_type, delivery_status = :code, delivery_detail = :err,
        delivery_at = :at
    WHERE notice_id = :id AND status = 'sending' RETURNING notice_id
    """
)
_RETRY = text(
    """
    UPDATE notices SET status = 'pending', last_error = :err,
        next_attempt_at = now() + make_interval(secs => :delay)
    WHERE notice_id = :id AND status = 'sending'
    """
)
_HOLD = text(
    "UPDATE notices SET status = :st, last_error = :err WHERE notice_id = :id "
    "AND status = 'sending'"
)


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
        self._slots = asyncio.Semaphore(settings.sms_concurrency)

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def run(self, _runtime: object = None) -> None:
        conn: asyncpg.Connection | None = None
        try:
            while not self._stopping.is_set():
                try:
                    if conn is None or conn.is_closed():
                        conn = await asyncpg.connect(asyncpg_dsn(self.settings.database_url))
                        await conn.add_listener(SMS_SENDER_CHANNEL, lambda *_: self._wake.set())
                    self._wake.clear()
                    if await self.send_due():
                        continue
                    await wait_set(self._wake, self.settings.sms_poll_s)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("SMS sender failed; retrying")
                    if conn is not None:
                        with contextlib.suppress(Exception):
                            await conn.close(timeout=2)
                    conn = None
                    await asyncio.sleep(1.0)
        finally:
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close(timeout=2)
            close = getattr(self.provider, "close", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    await close()

    async def send_due(self) -> int:
        """Claim a batch of due SMS notices and send them; how many were claimed."""
        async with self.session_factory() as session, session.begin():
            rows = (
                await session.execute(
                    _CLAIM,
                    {"n": self.settings.sms_batch_size, "lease": self.settings.send_lease_s},
                )
            ).all()
        await asyncio.gather(*(self._one(r) for r in rows if r.state is not None))
        return len(rows)

    async def _one(self, row: Any) -> None:
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
            await self._write(_HOLD, {"st": decision.status, "err": decision.reason or None}, row)
            return
        callback = (
            f"{self.settings.public_url.rstrip('/')}/v1/webhooks/twilio?notice_id={row.notice_id}"
        )
        body = sms_text(state, row.kind, self.settings.customer_portal_url, row.locale)
        try:
            async with self._slots:
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
            await self._failed(row, state, exc)
            return
        at = self.clock.now()
        async with self.session_factory() as session, session.begin():
            done = await session.execute(
                _SENT,
                {"id": row.notice_id, "at": at, "to": decision.to, "sid": accepted.provider_id},
            )
            if done.first() is not None:
                await self.outbox.add(
                    session,
                    ev.NoticeSmsSent(
                        **self._common(row, state),
                        **reported_role(decision.role),
                        sent_at=at,
                    ),
                    event_id=f"notice:{row.notice_id}:sent",
                )
        log.info("SMS notice sent", extra={"notice_id": row.notice_id, "sid": accepted.provider_id})

    async def _failed(self, row: Any, state: ev.AlertState, exc: SmsError) -> None:
        final = exc.permanent or row.attempts >= self.settings.send_max_attempts
        if not final:
            delay = retry_delay_s(
                row.attempts,
                initial_s=self.settings.send_backoff_initial_s,
                max_s=self.settings.send_backoff_max_s,
                jitter=random.uniform(0.9, 1.1),
            )
            await self._write(_RETRY, {"err": str(exc)[:2000], "delay": delay}, row)
            log.warning("SMS send failed; will retry", extra={"notice_id": row.notice_id})
            return
        at = self.clock.now()
        bounce_type = "hard" if exc.permanent else "soft"
        async with self.session_factory() as session, session.begin():
            done = await session.execute(
                _FAILED,
                {
                    "id": row.notice_id,
                    "err": str(exc)[:2000],
                    "bounce_type": bounce_type,
                    "code": exc.code[:20] or None,
                    "at": at,
                },
            )
            if done.first() is not None:
                await self.outbox.add(
                    session,
                    ev.NoticeBounced(
                        **self._common(row, state),
                        channel="sms",
                        bounce_type=bounce_type,
                        status=exc.code[:200],
                        reason=str(exc)[:2000],
                        source="twilio",
                        bounced_at=at,
                    ),
                    event_id=f"notice:{row.notice_id}:bounced",
                )
                await self._fall_back(session, row, state)
        log.error("SMS notice failed for good", extra={"notice_id": row.notice_id})

    async def _fall_back(self, session: AsyncSession, row: Any, state: ev.AlertState) -> None:
        """The SMS did not reach them: the channel after SMS (a letter), if the policy allows."""
        await queue_fallback(
            session,
            Unreached(
                notice_id=row.notice_id,
                alert_id=row.alert_id,
                customer_id=row.customer_id,
                recipient_customer_id=row.recipient_customer_id,
                recipient_role=row.recipient_role,
                kind=row.kind,
                alert_version=row.alert_version,
                reminder_no=row.reminder_no,
                severity=state.recall.severity,
                phone=row.phone,
                sms_opt_out=bool(row.sms_opt_out),
                channel="sms",
            ),
            sms_available=True,
            letters_available=self.settings.letters_available,
        )

    async def _write(self, stmt: Any, values: dict[str, Any], row: Any) -> None:
        async with self.session_factory() as session, session.begin():
            await session.execute(stmt, {**values, "id": row.notice_id})

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
