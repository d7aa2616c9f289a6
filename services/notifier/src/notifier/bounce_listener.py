"""The inbound side of the bounce address: an SMTP server (aiosmtpd) that the bounce domain's MX
hands DSNs and feedback reports to, as a mail system hands mail to a mailbox server.

It takes mail only for the bounce address and the return paths we minted (VERP, checked by their
tag at RCPT), reads each message as a report (:mod:`notifier.bounces`) and records it
(:class:`~notifier.delivery.DeliveryRecorder`). What cannot be recorded now (the database is down)
is answered 451, so the MX keeps it and tries again; a message that is no report, or about no
notice of ours, is taken (250) and counted, never bounced back (that would loop).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from notifier.bounces import notice_of_verp, parse_report
from notifier.clock import Clock
from notifier.delivery import DeliveryRecorder
from notifier.settings import Settings
from recall_shared.events import DeliverySource

log = logging.getLogger(__name__)


class _BounceHandler:
    def __init__(self, listener: BounceListener) -> None:
        self.listener = listener

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        s = self.listener.settings
        if address.lower() != s.bounce_mailbox.lower() and (
            notice_of_verp(address, s.bounce_mailbox, s.verp_key) is None
        ):
            return "550 5.1.1 not a bounce address of ours"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        try:
            await self.listener.take(envelope.rcpt_tos, raw)
        except Exception:
            log.exception("could not record a bounce; the MX is asked to retry")
            return "451 4.3.0 cannot record the report now, try again later"
        return "250 OK"


class BounceListener:
    """Listens on ``bounce_smtp_host:bounce_smtp_port`` while the service runs."""

    def __init__(self, *, settings: Settings, recorder: DeliveryRecorder, clock: Clock) -> None:
        self.settings = settings
        self.recorder = recorder
        self.clock = clock
        self.port: int | None = None  # the bound port (bounce_smtp_port 0 picks a free one)
        self.bound = asyncio.Event()
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self, _runtime: object = None) -> None:
        handler = _BounceHandler(self)

        def factory() -> SMTP:
            return SMTP(
                handler,
                hostname="bounces.recall-alerts",
                decode_data=False,
                enable_SMTPUTF8=True,
                data_size_limit=10 * 1024 * 1024,
            )

        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            factory,
            host=self.settings.bounce_smtp_host,
            port=self.settings.bounce_smtp_port or 0,
            reuse_address=True,
        )
        sockets: Any = server.sockets
        self.port = sockets[0].getsockname()[1]
        self.bound.set()
        log.info("bounce listener up", extra={"port": self.port})
        try:
            await self._stopping.wait()
        finally:
            server.close()
            await server.wait_closed()

    async def take(self, rcpt_tos: list[str], raw: bytes) -> None:
        """Record every recipient report in one message. The VERP recipient names the notice;
        without one (mail to the plain bounce address) the returned headers must."""
        s = self.settings
        verp_ids = [n for r in rcpt_tos if (n := notice_of_verp(r, s.bounce_mailbox, s.verp_key))]
        reports = parse_report(raw)
        if not reports:
            log.info("mail to the bounce address that is no report", extra={"rcpt": rcpt_tos})
        at = self.clock.now()
        for r in reports:
            notice_id = verp_ids[0] if verp_ids else r.notice_id
            if notice_id is None:
                self.recorder.unmatched(r.report, source="dsn")
                continue
            source: DeliverySource = "arf" if r.report.kind == "complained" else "dsn"
            await self.recorder.record(notice_id, r.report, source=source, at=at)
