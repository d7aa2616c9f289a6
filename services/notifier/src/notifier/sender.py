"""The sender: claims due notices, renders and sends them over pooled SMTP connections, records the result
with an event.

State machine of a notice (all transitions are committed rows):

    pending --claim--> sending --SMTP 250--> sent          (+ notification.sent.v1)
                         |----4xx / connection error--> pending, retried with exponential backoff
                         |----5xx, or attempts used up--> failed (+ notification.failed.v1 with the reason)
                         '----lease expired (the sender died)--> in doubt, see below

**Exactly once, as far as SMTP allows.** SMTP has no idempotency key and a relay cannot be asked whether it
already took a message, so after a crash between the relay's "250" and our commit of 'sent' nobody can know
whether the mail left. Everything short of that window is exactly once: a notice has one row per (alert,
kind, version, recipient, reminder number) and a redelivered event cannot add a second; a claim is a lease
(``FOR UPDATE SKIP LOCKED``), so two senders never hold the same notice; 'sending' is committed before the
SMTP transaction begins, with the deterministic Message-ID. A 'sending' notice whose lease expired is *in
doubt*, and ``Settings.delivery_guarantee`` decides:

- ``at_least_once`` (default): re-send it, with the identical Message-ID and ``X-Recall-Notice-Id`` (counted
  in ``resent_in_doubt``). A duplicate safety notice costs the customer a second look; a lost one can cost
  an injury, so a missing notice is the worse error. Mail systems and the customer's client can recognise
  the duplicate by its Message-ID. In this mode the claim itself marks the batch 'sending' (one write per
  batch, not per message), so "in doubt" also covers a crash after the claim but before the send.
- ``at_most_once``: the claim only leases; each notice is marked 'sending' in its own transaction right
  before its SMTP transaction, so only a notice whose SMTP transaction may really have started is in doubt.
  It is never re-sent: it becomes 'in_doubt' with a ``notification.failed.v1`` for an operator to resolve.

Connection errors once the SMTP transaction started are likewise in doubt (the relay may have taken the
message before the connection broke); at-least-once retries them, at-most-once records them as in doubt.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import getaddresses, parseaddr
from typing import Any, Protocol

import aiosmtplib
import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notifier.clock import Clock, SystemClock
from notifier.handlers import SENDER_CHANNEL, message_id_for
from notifier.render import NoticeRenderer, OutgoingMail, outgoing, serialize_message
from notifier.settings import Settings
from recall_shared import events as ev
from recall_shared.db import asyncpg_dsn
from recall_shared.metrics import Metrics
from recall_shared.outbox import Outbox

log = logging.getLogger(__name__)


class MailError(Exception):
    """A failed send. ``permanent``: the relay refused for good (5xx). ``in_doubt``: the connection broke
    after the SMTP transaction began, so the relay may have taken the message."""

    def __init__(self, message: str, *, permanent: bool, in_doubt: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.in_doubt = in_doubt


class MailTransport(Protocol):
    """Sends one notice. ``message`` is an :class:`~notifier.render.OutgoingMail` (envelope and bytes; its
    headers can be read like a message's: ``message["Message-ID"]``)."""

    async def send(self, message: OutgoingMail) -> None: ...


# --------------------------------------------------------------------------- the SMTP connection pool


@dataclass
class _Connection:
    smtp: aiosmtplib.SMTP
    last_used: float
    messages: int = 0


class SmtpPool:
    """A bounded pool of open SMTP connections to the relay (``smtp_concurrency`` of them).

    Connections are opened on demand up to the bound and kept open between messages; one that has been
    idle longer than ``smtp_idle_check_s`` is checked with NOOP before reuse, one that failed is dropped
    and replaced, and after a refused transaction the envelope is reset (RSET, done by aiosmtplib). A
    connection that carried ``smtp_max_messages_per_connection`` messages is closed and replaced.
    """

    def __init__(self, settings: Settings, size: int | None = None) -> None:
        self.settings = settings
        self.size = size or settings.smtp_concurrency
        self._slots = asyncio.Semaphore(self.size)
        self._idle: list[_Connection] = []
        self._closed = False
        self.connections_opened = 0

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[_Connection]:
        """One healthy connection for the caller alone; returned to the pool unless it failed."""
        async with self._slots:
            conn = await self._checkout()
            healthy = False
            try:
                yield conn
                healthy = True
            except MailError:
                healthy = (
                    True  # the relay answered (the connection is still open) or send_on closed it
                )
                raise
            finally:
                conn.last_used = time.monotonic()
                limit = self.settings.smtp_max_messages_per_connection
                if (
                    healthy
                    and not self._closed
                    and conn.smtp.is_connected
                    and not (limit and conn.messages >= limit)
                ):
                    self._idle.append(conn)
                else:
                    await self._discard(conn, quit_=healthy)

    async def send(self, message: OutgoingMail | EmailMessage) -> None:
        async with self.connection() as conn:
            await self.send_on(conn, message)

    async def send_on(self, conn: _Connection, message: OutgoingMail | EmailMessage) -> None:
        """One SMTP transaction on ``conn``; failures become :class:`MailError`. A broken connection raises
        out of the ``connection()`` block, so it is dropped."""
        sender, recipients, data = envelope_of(message)
        conn.messages += 1
        try:
            await conn.smtp.sendmail(sender, recipients, data)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [e.code for e in exc.recipients]
            permanent = all(500 <= c < 600 for c in codes)
            detail = "; ".join(f"{e.recipient}: {e.code} {e.message}" for e in exc.recipients)
            raise MailError(
                f"SMTP {codes[0] if codes else '?'}: recipient refused: {detail}",
                permanent=permanent,
            ) from exc
        except aiosmtplib.SMTPResponseException as exc:
            if (
                exc.code == 421 or not conn.smtp.is_connected
            ):  # the relay is closing this connection
                conn.smtp.close()
            raise MailError(
                f"SMTP {exc.code}: {exc.message}", permanent=500 <= exc.code < 600
            ) from exc
        except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
            conn.smtp.close()
            raise MailError(f"{type(exc).__name__}: {exc}", permanent=False, in_doubt=True) from exc

    async def _checkout(self) -> _Connection:
        while self._idle:
            conn = self._idle.pop()
            if not conn.smtp.is_connected:
                continue
            if time.monotonic() - conn.last_used <= self.settings.smtp_idle_check_s:
                return conn
            try:
                await conn.smtp.noop()
                return conn
            except (TimeoutError, aiosmtplib.SMTPException, OSError):
                await self._discard(conn, quit_=False)
        return await self._open()

    async def _open(self) -> _Connection:
        s = self.settings
        smtp = aiosmtplib.SMTP(
            hostname=s.smtp_host,
            port=s.smtp_port,
            username=s.smtp_username,
            password=s.smtp_password,
            start_tls=s.smtp_starttls,
            timeout=s.smtp_timeout_s,
        )
        try:
            await smtp.connect()
        except aiosmtplib.SMTPResponseException as exc:
            smtp.close()
            raise MailError(f"SMTP {exc.code} on connect: {exc.message}", permanent=False) from exc
        except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
            smtp.close()
            raise MailError(
                f"cannot connect to the relay: {type(exc).__name__}: {exc}", permanent=False
            ) from exc
        self.connections_opened += 1
        return _Connection(smtp=smtp, last_used=time.monotonic())

    async def _discard(self, conn: _Connection, *, quit_: bool) -> None:
        if quit_ and conn.smtp.is_connected:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.smtp.quit(), timeout=2)
        conn.smtp.close()

    async def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        await asyncio.gather(*(self._discard(c, quit_=True) for c in idle), return_exceptions=True)


class SmtpTransport:
    """SMTP to the configured relay (the local sink in development and tests) over the pool."""

    def __init__(self, settings: Settings) -> None:
        self.pool = SmtpPool(settings)

    async def send(self, message: OutgoingMail | EmailMessage) -> None:
        await self.pool.send(message)

    async def close(self) -> None:
        await self.pool.close()


def envelope_of(message: OutgoingMail | EmailMessage) -> tuple[str, list[str], bytes]:
    """SMTP envelope (MAIL FROM, RCPT TO) and the bytes of a notice."""
    if isinstance(message, OutgoingMail):
        return message.sender, message.recipients, message.data
    sender = parseaddr(str(message["From"]))[1]
    recipients = [
        addr for _, addr in getaddresses([str(v) for v in message.get_all("To", [])]) if addr
    ]
    if not sender or not recipients:
        raise MailError("message has no sender or recipient", permanent=True)
    return sender, recipients, serialize_message(message)


# --------------------------------------------------------------------------- the sender


_CLAIM_AT_LEAST_ONCE = text(
    """
    WITH due AS (
        SELECT notice_id, status FROM notices
        WHERE status IN ('pending', 'sending') AND next_attempt_at <= now()
        ORDER BY next_attempt_at LIMIT :n FOR UPDATE SKIP LOCKED)
    UPDATE notices n SET attempts = n.attempts + 1, next_attempt_at = now() + make_interval(secs => :lease),
        status = 'sending', sending_at = now(), message_id = '<' || n.notice_id || '@recall-alerts.notices>',
        resent_in_doubt = n.resent_in_doubt + CASE WHEN due.status = 'sending' THEN 1 ELSE 0 END
    FROM due WHERE n.notice_id = due.notice_id
    RETURNING n.notice_id, n.attempts, due.status AS was
    """
)
_CLAIM_AT_MOST_ONCE = text(
    """
    WITH due AS (
        SELECT notice_id, status FROM notices
        WHERE status IN ('pending', 'sending') AND next_attempt_at <= now()
        ORDER BY next_attempt_at LIMIT :n FOR UPDATE SKIP LOCKED)
    UPDATE notices n SET attempts = n.attempts + 1, next_attempt_at = now() + make_interval(secs => :lease)
    FROM due WHERE n.notice_id = due.notice_id
    RETURNING n.notice_id, n.attempts, due.status AS was
    """
)
_LOAD = text(
    """
    SELECT n.notice_id, n.alert_id, n.customer_id, n.recipient_customer_id, n.recipient_role, n.kind,
           n.alert_version, n.reminder_no, a.status AS alert_status, a.alert_version AS current_version, a.state,
           c.name, c.email, c.safety_email, c.locale,
           EXISTS (SELECT 1 FROM alert_responses r WHERE r.alert_id = n.alert_id) AS responded
    FROM notices n
    JOIN alerts a ON a.alert_id = n.alert_id
    LEFT JOIN contacts c ON c.customer_id = n.recipient_customer_id
    WHERE n.notice_id = ANY(:ids)
    """
)
_MARK_SENDING = text(
    """
    UPDATE notices SET status = 'sending', sending_at = now(), message_id = :mid
    WHERE notice_id = :id AND attempts = :attempt AND status = 'pending'
    RETURNING notice_id
    """
)
_RECORD_SENT = text(
    """
    UPDATE notices n SET status = 'sent', sent_at = v.sent_at, sent_to = v.sent_to, last_error = NULL
    FROM (SELECT unnest(CAST(:ids AS text[])) AS notice_id, unnest(CAST(:tos AS text[])) AS sent_to,
                 unnest(CAST(:ats AS timestamptz[])) AS sent_at) v
    WHERE n.notice_id = v.notice_id AND n.status = 'sending'
    RETURNING n.notice_id
    """
)
_START_REMINDERS = text(
    """
    INSERT INTO reminders (alert_id, recipient_customer_id, customer_id, recipient_role, base_at, next_no, next_due_at)
    SELECT * FROM unnest(CAST(:alert_ids AS text[]), CAST(:recipients AS text[]), CAST(:customers AS text[]),
                         CAST(:roles AS text[]), CAST(:bases AS timestamptz[]), CAST(:nos AS int[]),
                         CAST(:dues AS timestamptz[]))
    ON CONFLICT DO NOTHING
    """
)

FaultHook = Callable[[str, str], Awaitable[None]]


@dataclass
class _Job:
    notice_id: str
    attempt: int
    in_doubt: bool  # the previous attempt was interrupted after 'sending' was recorded
    row: Any = None


@dataclass
class _Outcome:
    job: _Job
    status: str  # sent | retry | failed | in_doubt | cancelled | waiting_contact
    at: datetime
    to: str = ""
    role: str = ""
    reason: str = ""
    permanent: bool = False
    state: ev.AlertState | None = None


class NoticeSender:
    def __init__(
        self,
        *,
        settings: Settings,
        session_factory: async_sessionmaker[AsyncSession],
        outbox: Outbox,
        metrics: Metrics,
        transport: MailTransport,
        clock: Clock | None = None,
        fault: FaultHook | None = None,
    ) -> None:
        self.settings = settings
        self.session_factory = session_factory
        self.outbox = outbox
        self.metrics = metrics
        self.transport = transport
        self.clock = clock or SystemClock()
        self.fault = (
            fault  # fault injection for tests: awaited at "claimed", "marked" and "sent" per notice
        )
        self.renderer = NoticeRenderer(settings.customer_portal_url)
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        # Rendering and bookkeeping of the next messages overlap the SMTP transactions in flight.
        self._slots = asyncio.Semaphore(settings.smtp_concurrency * 4)

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
                        await conn.add_listener(SENDER_CHANNEL, lambda *_: self._wake.set())
                    self._wake.clear()
                    # Two claim loops: one batch's bookkeeping overlaps the other's SMTP transactions.
                    await asyncio.gather(self._drain(), self._drain())
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(
                            self._wake.wait(), timeout=self.settings.sender_poll_s
                        )
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("notice sender failed; retrying")
                    if conn is not None:
                        with contextlib.suppress(Exception):
                            await conn.close(timeout=2)
                    conn = None
                    await asyncio.sleep(1.0)
        finally:
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close(timeout=2)
            close = getattr(self.transport, "close", None)
            if close is not None and self._stopping.is_set():
                with contextlib.suppress(Exception):
                    await close()

    async def _drain(self) -> None:
        while not self._stopping.is_set() and await self.send_due() > 0:
            pass

    async def send_due(self, limit: int | None = None) -> int:
        """Claim up to ``limit`` due notices, send them, record the results; returns how many were claimed."""
        at_most_once = self.settings.delivery_guarantee == "at_most_once"
        async with self.session_factory() as session, session.begin():
            rows = (
                await session.execute(
                    _CLAIM_AT_MOST_ONCE if at_most_once else _CLAIM_AT_LEAST_ONCE,
                    {
                        "lease": self.settings.send_lease_s,
                        "n": limit or self.settings.send_batch_size,
                    },
                )
            ).all()
        if not rows:
            return 0
        jobs = {r.notice_id: _Job(r.notice_id, r.attempts, r.was == "sending") for r in rows}
        async with self.session_factory() as session:
            for row in (await session.execute(_LOAD, {"ids": list(jobs)})).all():
                jobs[row.notice_id].row = row
        states: dict[tuple[str, int], ev.AlertState] = {}
        outcomes = await asyncio.gather(
            *(self._send_one(job, states) for job in jobs.values() if job.row is not None)
        )
        await self._record(list(outcomes))
        return len(rows)

    async def _send_one(self, job: _Job, states: dict[tuple[str, int], ev.AlertState]) -> _Outcome:
        row = job.row
        at_most_once = self.settings.delivery_guarantee == "at_most_once"
        if self.fault is not None:
            await self.fault("claimed", job.notice_id)
        if job.in_doubt:
            log.warning(
                "notice delivery in doubt: its sender stopped mid-send",
                extra={"notice_id": job.notice_id, "guarantee": self.settings.delivery_guarantee},
            )
        # Not to be sent (any more): checked before an in-doubt notice too, so a withdrawn alert is not re-sent.
        if row.kind != "withdrawal" and row.alert_status == "withdrawn":
            return _Outcome(job, "cancelled", self.clock.now(), reason="alert withdrawn")
        if row.kind == "reminder" and (row.alert_status != "open" or row.responded):
            return _Outcome(
                job,
                "cancelled",
                self.clock.now(),
                reason=f"reminders stopped: alert {row.alert_status}"
                + (", customer responded" if row.responded else ""),
            )
        if job.in_doubt and at_most_once:
            return _Outcome(
                job,
                "in_doubt",
                self.clock.now(),
                permanent=True,
                state=self._state(row, states),
                reason="delivery in doubt: the sender stopped after the SMTP transaction began; "
                "not re-sent (delivery_guarantee=at_most_once)",
            )
        to = row.safety_email or row.email
        if not to:
            return _Outcome(job, "waiting_contact", self.clock.now())
        state = self._state(row, states)
        kind: ev.NoticeKind = row.kind
        async with self._slots:
            rendered = self.renderer.render(
                state,
                kind=kind,
                locale=row.locale,
                recipient_name=row.name or "",
                recipient_role=row.recipient_role,
            )
            try:
                message = outgoing(
                    rendered,
                    to=to,
                    name=row.name or "",
                    mail_from=self.settings.mail_from,
                    message_id=message_id_for(job.notice_id),
                    notice_id=job.notice_id,
                )
            except ValueError as exc:  # an address that cannot be written into a header
                return _Outcome(
                    job, "failed", self.clock.now(), reason=str(exc), permanent=True, state=state
                )
            role = (
                "safety_contact"
                if row.safety_email and row.recipient_role == "purchaser"
                else row.recipient_role
            )
            try:
                await self._deliver(job, message, at_most_once)
            except _Superseded:
                return _Outcome(job, "superseded", self.clock.now())
            except MailError as exc:
                if exc.in_doubt and at_most_once:
                    return _Outcome(
                        job,
                        "in_doubt",
                        self.clock.now(),
                        permanent=True,
                        state=state,
                        reason=f"delivery in doubt: {exc}; not re-sent (delivery_guarantee=at_most_once)",
                    )
                give_up = exc.permanent or job.attempt >= self.settings.send_max_attempts
                return _Outcome(
                    job,
                    "failed" if give_up else "retry",
                    self.clock.now(),
                    reason=str(exc),
                    permanent=exc.permanent,
                    state=state,
                )
        if self.fault is not None:
            await self.fault("sent", job.notice_id)
        return _Outcome(job, "sent", self.clock.now(), to=to, role=role, state=state)

    async def _deliver(self, job: _Job, message: OutgoingMail, at_most_once: bool) -> None:
        if not at_most_once:
            await self.transport.send(message)  # 'sending' was recorded by the claim
            return
        pool: SmtpPool | None = getattr(self.transport, "pool", None)
        if pool is None:
            await self._mark_sending(job)
            await self.transport.send(message)
            return
        # At most once: hold the connection first, so 'sending' is recorded as close to the SMTP transaction
        # as possible and a crash while waiting for a connection is not "in doubt".
        async with pool.connection() as conn:
            await self._mark_sending(job)
            await pool.send_on(conn, message)

    async def _mark_sending(self, job: _Job) -> None:
        async with self.session_factory() as session, session.begin():
            marked = (
                await session.execute(
                    _MARK_SENDING,
                    {
                        "id": job.notice_id,
                        "attempt": job.attempt,
                        "mid": message_id_for(job.notice_id),
                    },
                )
            ).first()
        if marked is None:
            raise _Superseded(job.notice_id)  # another sender took it over, or it was cancelled
        if self.fault is not None:
            await self.fault("marked", job.notice_id)

    @staticmethod
    def _state(row: Any, cache: dict[tuple[str, int], ev.AlertState]) -> ev.AlertState:
        key = (row.alert_id, row.current_version)
        if key not in cache:
            cache[key] = ev.AlertState.model_validate(row.state)
        return cache[key]

    # ------------------------------------------------------------------ recording

    async def _record(self, outcomes: list[_Outcome]) -> None:
        """All outcomes of a batch in one transaction (a group commit)."""
        sent = [o for o in outcomes if o.status == "sent"]
        other = [o for o in outcomes if o.status != "sent"]
        if not outcomes:
            return
        async with self.session_factory() as session, session.begin():
            if sent:
                await self._record_sent(session, sent)
            for o in other:
                await self._record_other(session, o)
        for o in sent:
            log.info(
                "notice sent",
                extra={
                    "notice_id": o.job.notice_id,
                    "alert_id": o.job.row.alert_id,
                    "kind": o.job.row.kind,
                    "resent_in_doubt": o.job.in_doubt,
                },
            )

    async def _record_sent(self, session: AsyncSession, sent: list[_Outcome]) -> None:
        recorded = set(
            (
                await session.execute(
                    _RECORD_SENT,
                    {
                        "ids": [o.job.notice_id for o in sent],
                        "tos": [o.to for o in sent],
                        "ats": [o.at for o in sent],
                    },
                )
            ).scalars()
        )
        events: list[tuple[ev.Event, str | None]] = []
        reminders = []
        for o in sent:
            if o.job.notice_id not in recorded:
                continue
            row, state = o.job.row, o.state
            assert state is not None
            events.append(
                (
                    ev.NoticeSent(
                        notice_id=o.job.notice_id,
                        alert_id=row.alert_id,
                        customer_id=row.customer_id,
                        recall_id=state.recall_id,
                        kind=row.kind,
                        alert_version=row.alert_version,
                        recipient_role=o.role,
                        sent_at=o.at,  # type: ignore[arg-type]
                    ),
                    f"notice:{o.job.notice_id}:sent",
                )
            )
            if row.kind == "initial" and self.settings.reminder_schedule_days:
                reminders.append(o)
        if events:
            await self.outbox.add_many(session, events)
        if reminders:
            first = timedelta(days=self.settings.reminder_schedule_days[0])
            await session.execute(
                _START_REMINDERS,
                {
                    "alert_ids": [o.job.row.alert_id for o in reminders],
                    "recipients": [o.job.row.recipient_customer_id for o in reminders],
                    "customers": [o.job.row.customer_id for o in reminders],
                    "roles": [o.job.row.recipient_role for o in reminders],
                    "bases": [o.at for o in reminders],
                    "nos": [1] * len(reminders),
                    "dues": [o.at + first for o in reminders],
                },
            )

    async def _record_other(self, session: AsyncSession, o: _Outcome) -> None:
        nid, row = o.job.notice_id, o.job.row
        if o.status == "superseded":
            return
        if o.status in ("cancelled", "waiting_contact"):
            await session.execute(
                text(
                    "UPDATE notices SET status = :st, last_error = :err WHERE notice_id = :id "
                    "AND status IN ('pending', 'sending')"
                ),
                {"st": o.status, "err": o.reason or None, "id": nid},
            )
            return
        if o.status == "retry":
            delay = min(
                self.settings.send_backoff_initial_s * 2 ** max(o.job.attempt - 1, 0),
                self.settings.send_backoff_max_s,
            ) * random.uniform(0.9, 1.1)
            await session.execute(
                text(
                    "UPDATE notices SET status = 'pending', last_error = :err, "
                    "next_attempt_at = now() + make_interval(secs => :delay) WHERE notice_id = :id "
                    "AND status IN ('pending', 'sending')"
                ),
                {"err": o.reason[:2000], "delay": delay, "id": nid},
            )
            log.warning(
                "notice send failed; will retry",
                extra={"notice_id": nid, "error": o.reason, "retry_in_s": delay},
            )
            return
        # failed for good, or in doubt under at-most-once
        result = await session.execute(
            text(
                "UPDATE notices SET status = :st, last_error = :err WHERE notice_id = :id "
                "AND status IN ('pending', 'sending') RETURNING notice_id"
            ),
            {"st": o.status, "err": o.reason[:2000], "id": nid},
        )
        if result.first() is None or o.state is None:
            return
        await self.outbox.add(
            session,
            ev.NoticeFailed(
                notice_id=nid,
                alert_id=row.alert_id,
                customer_id=row.customer_id,
                recall_id=o.state.recall_id,
                kind=row.kind,
                alert_version=row.alert_version,
                reason=o.reason[:2000],
                permanent=o.permanent,
                failed_at=o.at,
            ),
            event_id=f"notice:{nid}:failed",
        )
        log.error(
            "notice failed for good",
            extra={"notice_id": nid, "error": o.reason, "status": o.status},
        )


class _Superseded(Exception):
    pass
