"""The SMTP side of sending: a bounded pool of open connections to the relay, the transport the
sender uses, and what a failed SMTP transaction means (:class:`MailError`).

Kept apart from the sender (``notifier.sender``) so the pipeline can be driven by any
:class:`MailTransport` (tests inject failing or slow ones) and the pool can be tested on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import getaddresses, parseaddr
from typing import Protocol

import aiosmtplib

from notifier.render import OutgoingMail, serialize_message
from notifier.settings import Settings


class MailError(Exception):
    """A failed send. ``permanent``: the relay refused for good (5xx). ``in_doubt``: the connection
    broke after the SMTP transaction began, so the relay may have taken the message."""

    def __init__(self, message: str, *, permanent: bool, in_doubt: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.in_doubt = in_doubt


class MailTransport(Protocol):
    """Sends one notice. ``message`` is an :class:`~notifier.render.OutgoingMail` (envelope and
    bytes; its headers can be read like a message's: ``message["Message-ID"]``)."""

    async def send(self, message: OutgoingMail) -> None: ...


@dataclass
class Connection:
    smtp: aiosmtplib.SMTP
    last_used: float
    messages: int = 0


class SmtpPool:
    """A bounded pool of open SMTP connections to the relay (``smtp_concurrency`` of them).

    Connections are opened on demand up to the bound and kept open between messages; one that
    has been idle longer than ``smtp_idle_check_s`` is checked with NOOP before reuse, one that
    failed is dropped and replaced, and after a refused transaction the envelope is reset (RSET,
    done by aiosmtplib). A
    connection that carried ``smtp_max_messages_per_connection`` messages is closed and replaced.
    """

    def __init__(self, settings: Settings, size: int | None = None) -> None:
        self.settings = settings
        self.size = size or settings.smtp_concurrency
        self._slots = asyncio.Semaphore(self.size)
        self._idle: list[Connection] = []
        self._closed = False
        self.connections_opened = 0

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
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

    async def send_on(self, conn: Connection, message: OutgoingMail | EmailMessage) -> None:
        """One SMTP transaction on ``conn``; failures become :class:`MailError`. A broken connection
        raises out of the ``connection()`` block, so it is dropped."""
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

    async def _checkout(self) -> Connection:
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

    async def _open(self) -> Connection:
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
        return Connection(smtp=smtp, last_used=time.monotonic())

    async def _discard(self, conn: Connection, *, quit_: bool) -> None:
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
