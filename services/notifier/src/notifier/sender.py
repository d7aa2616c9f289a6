"""The sender: claims due notices, renders and sends them over SMTP, records the result with an event.

Claiming sets a lease (``next_attempt_at`` in the future) in its own transaction, so a crash between
sending and recording leaves the notice to be retried after the lease; the retry carries the same
Message-ID, which lets mail systems drop the duplicate. Transient failures back off exponentially;
permanent ones (5xx) are recorded with the reason and a ``notification.failed.v1`` event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Protocol

import aiosmtplib
import asyncpg
from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notifier.handlers import SENDER_CHANNEL
from notifier.models import Contact, KnownAlert, Notice
from notifier.render import NoticeRenderer, build_message
from notifier.settings import Settings
from recall_shared import events as ev
from recall_shared.db import asyncpg_dsn
from recall_shared.metrics import Metrics
from recall_shared.outbox import Outbox

log = logging.getLogger(__name__)


class MailError(Exception):
    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


class MailTransport(Protocol):
    async def send(self, message: EmailMessage) -> None: ...


class SmtpTransport:
    """SMTP to the configured relay (the local sink in development and tests)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def send(self, message: EmailMessage) -> None:
        s = self.settings
        try:
            await aiosmtplib.send(
                message, hostname=s.smtp_host, port=s.smtp_port, username=s.smtp_username, password=s.smtp_password,
                start_tls=s.smtp_starttls, timeout=s.smtp_timeout_s,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            raise MailError(f"recipient refused: {exc}", permanent=True) from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise MailError(f"SMTP {exc.code}: {exc.message}", permanent=500 <= exc.code < 600) from exc
        except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError) as exc:
            raise MailError(f"{type(exc).__name__}: {exc}", permanent=False) from exc


_CLAIM = text(
    """
    UPDATE notices SET attempts = attempts + 1, next_attempt_at = now() + make_interval(secs => :lease)
    WHERE notice_id IN (
        SELECT notice_id FROM notices WHERE status = 'pending' AND next_attempt_at <= now()
        ORDER BY next_attempt_at LIMIT :n FOR UPDATE SKIP LOCKED)
    RETURNING notice_id
    """
)


class NoticeSender:
    def __init__(
        self, *, settings: Settings, session_factory: async_sessionmaker[AsyncSession], outbox: Outbox,
        metrics: Metrics, transport: MailTransport,
    ) -> None:
        self.settings = settings
        self.session_factory = session_factory
        self.outbox = outbox
        self.metrics = metrics
        self.transport = transport
        self.renderer = NoticeRenderer(settings.customer_portal_url)
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._slots = asyncio.Semaphore(settings.smtp_concurrency)

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def run(self, _runtime: object = None) -> None:
        conn: asyncpg.Connection | None = None
        while not self._stopping.is_set():
            try:
                if conn is None or conn.is_closed():
                    conn = await asyncpg.connect(asyncpg_dsn(self.settings.database_url))
                    await conn.add_listener(SENDER_CHANNEL, lambda *_: self._wake.set())
                while await self.send_due() > 0 and not self._stopping.is_set():
                    pass
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self.settings.sender_poll_s)
                self._wake.clear()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("notice sender failed; retrying")
                conn = None
                await asyncio.sleep(1.0)
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close(timeout=2)

    async def send_due(self, limit: int = 100) -> int:
        async with self.session_factory() as session, session.begin():
            ids = list((await session.execute(_CLAIM, {"lease": self.settings.send_lease_s, "n": limit})).scalars())
        await asyncio.gather(*(self._send_one(nid) for nid in ids))
        return len(ids)

    async def _send_one(self, notice_id: str) -> None:
        async with self._slots:
            async with self.session_factory() as session:
                notice = await session.get(Notice, notice_id)
                if notice is None or notice.status != "pending":
                    return
                alert = await session.get(KnownAlert, notice.alert_id)
                contact = await session.get(Contact, notice.recipient_customer_id)
            if alert is None or contact is None or not (contact.safety_email or contact.email):
                return  # cannot happen for a pending notice; the lease retries it if it does
            state = ev.AlertState.model_validate(alert.state)
            kind: ev.NoticeKind = notice.kind  # type: ignore[assignment]
            rendered = self.renderer.render(
                state, kind=kind, locale=contact.locale, recipient_name=contact.name, recipient_role=notice.recipient_role
            )
            to = contact.safety_email or contact.email or ""
            message_id = f"<{notice.notice_id}@recall-alerts.notices>"
            message = build_message(rendered, to=to, name=contact.name, mail_from=self.settings.mail_from,
                                    message_id=message_id, notice_id=notice.notice_id)
            try:
                await self.transport.send(message)
            except MailError as exc:
                await self._record_failure(notice, state, str(exc), permanent=exc.permanent)
                return
            await self._record_sent(notice, state, to, message_id, "safety_contact" if contact.safety_email and notice.recipient_role == "purchaser" else notice.recipient_role)

    async def _record_sent(self, notice: Notice, state: ev.AlertState, to: str, message_id: str, role: str) -> None:
        now = datetime.now(UTC)
        async with self.session_factory() as session, session.begin():
            result = await session.execute(
                update(Notice).where(Notice.notice_id == notice.notice_id, Notice.status == "pending")
                .values(status="sent", sent_at=now, sent_to=to, message_id=message_id, last_error=None)
                .returning(Notice.notice_id)
            )
            if result.first() is None:
                return
            await self.outbox.add(
                session,
                ev.NoticeSent(
                    notice_id=notice.notice_id, alert_id=notice.alert_id, customer_id=notice.customer_id,
                    recall_id=state.recall_id, kind=notice.kind, alert_version=notice.alert_version,  # type: ignore[arg-type]
                    recipient_role=role, sent_at=now,  # type: ignore[arg-type]
                ),
                event_id=f"notice:{notice.notice_id}:sent",
            )
        log.info("notice sent", extra={"notice_id": notice.notice_id, "alert_id": notice.alert_id, "kind": notice.kind})

    async def _record_failure(self, notice: Notice, state: ev.AlertState, reason: str, *, permanent: bool) -> None:
        give_up = permanent or notice.attempts >= self.settings.send_max_attempts
        now = datetime.now(UTC)
        async with self.session_factory() as session, session.begin():
            if not give_up:
                delay = self.settings.send_backoff_initial_s * 2 ** max(notice.attempts - 1, 0)
                await session.execute(
                    update(Notice).where(Notice.notice_id == notice.notice_id)
                    .values(last_error=reason[:2000], next_attempt_at=now + timedelta(seconds=min(delay, 3600)))
                )
                log.warning("notice send failed; will retry", extra={"notice_id": notice.notice_id, "error": reason, "retry_in_s": delay})
                return
            await session.execute(
                update(Notice).where(Notice.notice_id == notice.notice_id).values(status="failed", last_error=reason[:2000])
            )
            await self.outbox.add(
                session,
                ev.NoticeFailed(
                    notice_id=notice.notice_id, alert_id=notice.alert_id, customer_id=notice.customer_id,
                    recall_id=state.recall_id, kind=notice.kind, alert_version=notice.alert_version,  # type: ignore[arg-type]
                    reason=reason[:2000], permanent=permanent, failed_at=now,
                ),
                event_id=f"notice:{notice.notice_id}:failed",
            )
        log.error("notice failed for good", extra={"notice_id": notice.notice_id, "error": reason, "permanent": permanent})
