"""The bounded pool of SMTP connections: reuse over few connections (counted at the real sink),
reconnect after a broken connection, and the relay's answers classified (4xx retried with backoff,
5xx recorded)."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from notifier.render import NoticeRenderer, build_message
from notifier.settings import Settings
from notifier.smtp_pool import MailError, SmtpPool
from recall_shared.testing import eventually
from recall_shared.topics import NOTIFICATIONS

pytestmark = pytest.mark.integration


def settings(**overrides: Any) -> Settings:
    return Settings(
        database_url="postgresql+asyncpg://unused/unused", environment="test", **overrides
    )


def message(to: str, n: int = 0) -> EmailMessage:
    rendered = NoticeRenderer("https://shop.example").render(
        _alert(),
        kind="initial",
        locale="en",
        recipient_name="Pool Test",
        recipient_role="purchaser",
    )
    return build_message(
        rendered,
        to=to,
        name="Pool Test",
        mail_from="Recalls <r@recall-alerts.invalid>",
        message_id=f"<pool-{n}-{uuid.uuid4().hex}@t>",
        notice_id=f"pool-{n}",
    )


def _alert():
    from datetime import UTC, datetime
    from decimal import Decimal

    from recall_shared import events as ev

    return ev.AlertState(
        alert_id="al-pool",
        alert_version=1,
        customer_id="c",
        recall_id="r",
        recall_version=1,
        seller_id="s",
        tier="confirmed",
        lines=[
            ev.AffectedLine(
                order_id="o",
                line_id="l",
                product_id="p",
                seller_id="s",
                units=1,
                currency="EUR",
                purchased_at=datetime(2025, 1, 1, tzinfo=UTC),
                unit_price=Decimal("1"),
            )
        ],
        recall=ev.RecallContent(
            title="Pool kettle",
            hazard="Burns.",
            severity="high",
            stop_using="Stop.",
            remedies=[ev.Remedy(type="replacement")],
        ),
    )


async def test_pooled_connections_are_reused_at_the_real_sink(kit) -> None:
    addr = kit.new_email("pool")
    pool = SmtpPool(settings(smtp_concurrency=2))
    try:
        await asyncio.gather(*(pool.send(message(addr, i)) for i in range(8)))
    finally:
        await pool.close()
    assert pool.connections_opened == 2
    mails = await kit.wait_for_mails(addr, 8)
    peers = {
        str(m.message["X-Sink-Peer"]) for m in mails
    }  # the client's (host, port) as the sink saw it
    assert len(peers) == 2, peers


async def test_fifty_messages_over_two_connections(relay) -> None:
    # Counted at the server: the peer (host, port) of every transaction. (A scripted relay rather
    # than the shared sink, whose viewer slows down with every message stored.)
    handler, port = relay([])
    pool = SmtpPool(settings(smtp_host="127.0.0.1", smtp_port=port, smtp_concurrency=2))
    try:
        await asyncio.gather(*(pool.send(message(f"r{i}@x.example", i)) for i in range(50)))
    finally:
        await pool.close()
    assert len(handler.delivered) == 50
    assert pool.connections_opened == 2
    assert len(handler.peers) == 2, handler.peers


async def test_a_broken_connection_is_replaced(kit) -> None:
    addr = kit.new_email("pool")
    pool = SmtpPool(settings(smtp_concurrency=1))
    try:
        await pool.send(message(addr, 1))
        transport = pool._idle[0].smtp.transport
        assert isinstance(transport, asyncio.Transport)
        transport.abort()
        await asyncio.sleep(0.05)
        await pool.send(message(addr, 2))
        assert pool.connections_opened == 2
        pool._idle[0].last_used -= 3600
        await pool.send(message(addr, 3))
        assert pool.connections_opened == 2
    finally:
        await pool.close()
    await kit.wait_for_mails(addr, 3)


# --------------------------------------------------------------------------- a scripted relay


class ScriptedRelay:
    """An in-process SMTP server answering RCPT from a script (e.g. 451 twice, then 250)."""

    def __init__(self, answers: list[str]) -> None:
        self.answers = answers
        self.rcpts: list[str] = []
        self.delivered: list[bytes] = []
        self.peers: set[object] = set()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        self.rcpts.append(address)
        self.peers.add(session.peer)
        answer = self.answers.pop(0) if self.answers else "250 OK"
        if answer.startswith("250"):
            envelope.rcpt_tos.append(address)
        return answer

    async def handle_DATA(self, server, session, envelope):
        self.delivered.append(envelope.original_content or envelope.content)
        return "250 Message accepted"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def relay() -> Iterator[Callable[[list[str]], tuple[ScriptedRelay, int]]]:
    controllers: list[Controller] = []

    def start(answers: list[str]) -> tuple[ScriptedRelay, int]:
        handler = ScriptedRelay(list(answers))
        port = free_port()
        controller = Controller(handler, hostname="127.0.0.1", port=port)
        controller.start()
        controllers.append(controller)
        return handler, port

    yield start
    for c in controllers:
        c.stop()


async def test_relay_answers_are_classified_and_the_connection_survives(relay) -> None:
    handler, port = relay(["451 4.3.0 Try again later", "550 5.1.1 No such user"])
    pool = SmtpPool(settings(smtp_host="127.0.0.1", smtp_port=port, smtp_concurrency=1))
    try:
        with pytest.raises(MailError) as transient:
            await pool.send(message("a@x.example"))
        assert not transient.value.permanent and "451" in str(transient.value)
        with pytest.raises(MailError) as permanent:
            await pool.send(message("b@x.example"))
        assert permanent.value.permanent and "550" in str(permanent.value)
        await pool.send(message("c@x.example"))
    finally:
        await pool.close()
    assert len(handler.delivered) == 1
    assert pool.connections_opened == 1, (
        "a refused transaction is reset (RSET), the connection kept"
    )


async def test_unreachable_relay_is_a_transient_failure() -> None:
    pool = SmtpPool(settings(smtp_host="127.0.0.1", smtp_port=free_port(), smtp_timeout_s=2))
    with pytest.raises(MailError) as exc:
        await pool.send(message("a@x.example"))
    assert not exc.value.permanent and not exc.value.in_doubt
    await pool.close()


async def test_service_retries_a_transient_refusal_with_backoff_then_delivers(
    start_notifier, relay, kit
) -> None:
    handler, port = relay(["451 4.3.0 Greylisted", "421 4.3.2 Busy"])
    async with start_notifier(smtp_port=port, smtp_host="127.0.0.1") as svc:
        cid, addr = kit.new_customer(), kit.new_email()
        alert = kit.alert(cid)
        await svc.publish(kit.customer(cid, email_=addr))
        await svc.publish(kit.raised(alert))
        (notice,) = await svc.wait_for_notices(
            alert.alert_id, lambda ns: ns and ns[0]["status"] == "sent", timeout=20
        )
        assert notice["attempts"] == 3 and notice["last_error"] is None
        assert len(handler.delivered) == 1 and handler.rcpts == [addr] * 3
        assert (
            f"Message-ID: <{notice['notice_id']}@recall-alerts.notices>".encode()
            in handler.delivered[0]
        )


async def test_service_records_a_permanent_refusal_with_the_reason(
    start_notifier, relay, kit
) -> None:
    handler, port = relay(["550 5.1.1 Mailbox does not exist"])
    async with start_notifier(smtp_port=port, smtp_host="127.0.0.1") as svc:
        cid, addr = kit.new_customer(), kit.new_email()
        alert = kit.alert(cid)
        await svc.publish(kit.customer(cid, email_=addr))
        await svc.publish(kit.raised(alert))
        (notice,) = await svc.wait_for_notices(
            alert.alert_id, lambda ns: ns and ns[0]["status"] == "failed"
        )
        assert "550" in notice["last_error"] and "Mailbox does not exist" in notice["last_error"]

        async def failed() -> list:
            return [
                b
                for k, env, b in await kit.read_all(svc.topic(NOTIFICATIONS))
                if env.type == "notification.failed.v1"
            ]

        (event,) = await eventually(failed, timeout=15)
        assert event["permanent"] is True and "550" in event["reason"]
        assert handler.delivered == []
