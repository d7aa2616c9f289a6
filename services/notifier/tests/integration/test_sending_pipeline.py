"""The sending pipeline's own guarantees, on a real PostgreSQL (and the real SMTP sink where mail is
read back): a notice that waited past its lease is released rather than sent, and a database blip
while group-committing outcomes does not turn sent notices into "in doubt" ones."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, cast

import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notifier import handlers, stages
from notifier.clock import FakeClock
from notifier.render import OutgoingMail
from notifier.sender import FaultHook, NoticeSender
from notifier.settings import Settings
from notifier.smtp_pool import MailTransport, SmtpTransport
from recall_shared import events as ev
from recall_shared.db import create_engine, create_session_factory
from recall_shared.envelope import wrap
from recall_shared.logging import JsonFormatter
from recall_shared.metrics import Metrics
from recall_shared.outbox import Outbox
from recall_shared.testing import eventually, migrated_database

pytestmark = pytest.mark.integration


@dataclass
class Env:
    settings: Settings
    sessions: async_sessionmaker[AsyncSession]

    def sender(
        self,
        transport: MailTransport,
        sessions: async_sessionmaker[AsyncSession] | None = None,
        fault: FaultHook | None = None,
    ) -> NoticeSender:
        return NoticeSender(
            settings=self.settings,
            session_factory=sessions or self.sessions,
            outbox=Outbox(source="/tests/notifier", service="notifier"),
            metrics=Metrics("notifier"),
            transport=transport,
            clock=FakeClock(),
            fault=fault,
        )

    async def queue(self, kit, n: int) -> list[str]:
        """``n`` customers with an address and an alert each; returns the alert ids."""
        ids = []
        async with self.sessions() as session, session.begin():
            for _ in range(n):
                cid = kit.new_customer()
                alert = kit.alert(cid, title=f"Pipeline kettle {uuid.uuid4().hex[:6]}")
                for event in (kit.customer(cid, email_=kit.new_email()), kit.raised(alert)):
                    await handlers.HANDLERS[type(event)](session, event, wrap(event, source="/t"))
                ids.append(alert.alert_id)
        return ids

    async def run_until_sent(
        self,
        sender: NoticeSender,
        alert_ids: list[str],
        before_stop: Callable[[], object] | None = None,
    ) -> None:
        """Run the sender as the service does until every alert's notice is sent, then stop it."""
        running = asyncio.create_task(sender.run())

        async def all_sent() -> bool:
            return all([(await self.notice(a))["status"] == "sent" for a in alert_ids])

        try:
            await eventually(all_sent, timeout=30)
        finally:
            sender.stop()
            if before_stop is not None:
                before_stop()
            await asyncio.wait_for(running, 15)

    async def notice(self, alert_id: str) -> dict:
        async with self.sessions() as session:
            rows = await session.execute(
                text("SELECT * FROM notices WHERE alert_id = :a"), {"a": alert_id}
            )
            return dict(rows.mappings().one())


@contextlib.asynccontextmanager
async def environment(kit, **overrides: Any) -> AsyncIterator[Env]:
    async with migrated_database(kit.migrations, prefix="notifier") as url:
        settings = Settings(
            database_url=url,
            environment="test",
            log_json=False,
            log_level="WARNING",
            customer_portal_url=kit.portal,
            **overrides,
        )
        engine = create_engine(settings)
        try:
            yield Env(settings, create_session_factory(engine))
        finally:
            await engine.dispose()


class SlowRelay:
    """A relay taking ``seconds`` per message (only the relay is a double)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.delivered: list[str] = []

    async def send(self, message: OutgoingMail) -> None:
        await asyncio.sleep(self.seconds)
        self.delivered.append(str(message["X-Recall-Notice-Id"]))


async def test_a_notice_that_waited_past_its_lease_is_released_not_sent(kit) -> None:
    # One connection, 1 s per message, a 1.6 s lease: the third notice of the claim is still
    # waiting for the connection when its lease ends (at 2 s); another sender may hold it by then.
    # The second starts at 1 s, 0.6 s before the lease ends: room for a loaded machine's delays.
    async with environment(kit, smtp_concurrency=1, send_lease_s=1.6) as env:
        alerts = await env.queue(kit, 3)
        relay = SlowRelay(1.0)
        assert await env.sender(relay).send_due() == 3
        assert len(relay.delivered) == 2
        notices = [await env.notice(a) for a in alerts]
        assert [n["status"] for n in notices] == ["sent", "sent", "pending"]
        released = notices[2]
        assert released["attempts"] == 1 and released["resent_in_doubt"] == 0
        assert released["notice_id"] not in relay.delivered

        assert await env.sender(relay).send_due() == 1, "due again at once, not after a backoff"
        again = await env.notice(alerts[2])
        assert again["status"] == "sent" and again["resent_in_doubt"] == 0, "never in doubt"
        assert relay.delivered.count(released["notice_id"]) == 1


class BlinkingSessions:
    """The real session factory, made to fail ``fail_next`` times (a database connection reset)."""

    def __init__(self, real: async_sessionmaker[AsyncSession]) -> None:
        self.real = real
        self.fail_next = 0

    def __call__(self) -> AsyncSession:
        if self.fail_next:
            self.fail_next -= 1
            raise ConnectionResetError("connection to the database was reset")
        return self.real()


async def test_a_database_blip_while_recording_does_not_make_sent_notices_in_doubt(kit) -> None:
    async with environment(kit) as env:
        cid, addr = kit.new_customer(), kit.new_email()
        alert = kit.alert(cid, title=f"Blip kettle {uuid.uuid4().hex[:6]}")
        async with env.sessions() as session, session.begin():
            for event in (kit.customer(cid, email_=addr), ev.AlertRaised(alert=alert)):
                await handlers.HANDLERS[type(event)](session, event, wrap(event, source="/t"))
        sessions = BlinkingSessions(env.sessions)

        async def blink_after_the_send(step: str, notice_id: str) -> None:
            if step == "sent":
                sessions.fail_next = 2  # the group commit fails twice, then the database is back

        transport = SmtpTransport(env.settings)
        try:
            # The blinking factory stands in for the real one: the sender only calls it.
            factory = cast(async_sessionmaker[AsyncSession], sessions)
            await env.sender(transport, factory, fault=blink_after_the_send).send_due()
        finally:
            await transport.close()
        assert sessions.fail_next == 0
        n = await env.notice(alert.alert_id)
        assert n["status"] == "sent" and n["attempts"] == 1 and n["resent_in_doubt"] == 0
        async with env.sessions() as session:
            events = await session.scalar(
                text("SELECT count(*) FROM outbox WHERE event_id = :e"),
                {"e": f"notice:{n['notice_id']}:sent"},
            )
        assert events == 1
        assert len(await kit.wait_for_mails(addr, 1)) == 1


class DownFor:
    """The real session factory, failing every call for ``seconds`` once started (a DB outage)."""

    def __init__(self, real: async_sessionmaker[AsyncSession], seconds: float) -> None:
        self.real = real
        self.seconds = seconds
        self.until = 0.0
        self.refused = 0

    def start(self) -> None:
        self.until = asyncio.get_running_loop().time() + self.seconds

    def __call__(self) -> AsyncSession:
        if asyncio.get_running_loop().time() < self.until:
            self.refused += 1
            raise ConnectionRefusedError("connect to the database: connection refused")
        return self.real()


async def test_a_database_outage_while_claiming_lets_the_mails_in_flight_finish(kit) -> None:
    """The outage begins as the next batch is claimed (half of the current one still unsent). Old
    behaviour caught: the failed claim ended the flow, so the mails in flight were abandoned and
    what was sent went unrecorded; their leases ran out and they were sent again (CI: a sender
    that then stopped for good)."""
    async with environment(
        kit, smtp_concurrency=1, send_batch_size=4, send_lease_s=3, sender_poll_s=0.2
    ) as env:
        alerts = await env.queue(kit, 6)
        sessions = DownFor(env.sessions, seconds=1.5)
        sent: list[str] = []

        async def outage_at_the_second_send(step: str, notice_id: str) -> None:
            if step == "sent":
                sent.append(notice_id)
                if len(sent) == 2:
                    sessions.start()  # the claim of the next batch comes right after this

        relay = SlowRelay(0.2)
        factory = cast(async_sessionmaker[AsyncSession], sessions)
        await env.run_until_sent(
            env.sender(relay, factory, fault=outage_at_the_second_send), alerts
        )
        assert sessions.refused > 0, "the outage was met"
        notices = [await env.notice(a) for a in alerts]
        assert [(n["attempts"], n["resent_in_doubt"]) for n in notices] == [(1, 0)] * 6
        assert sorted(relay.delivered) == sorted(n["notice_id"] for n in notices), "once each"


class StubbornRelay:
    """A relay whose first send hangs and ignores being cancelled (as a driver swallowing a
    cancellation did), whose second fails with an error no stage expects, and which then works."""

    def __init__(self) -> None:
        self.calls = 0
        self.delivered: list[str] = []
        self.let_go = asyncio.Event()

    async def send(self, message: OutgoingMail) -> None:
        self.calls += 1
        if self.calls == 1:
            while not self.let_go.is_set():
                with contextlib.suppress(asyncio.CancelledError):
                    await self.let_go.wait()
            raise ConnectionResetError("let go")
        if self.calls == 2:
            await asyncio.sleep(0.2)
            raise RuntimeError("a bug in the relay's adapter")
        self.delivered.append(str(message["X-Recall-Notice-Id"]))


async def test_a_stage_that_ignores_cancellation_is_left_behind_and_sending_goes_on(
    kit, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Old behaviour caught: the flow's task group waited for every part to end once one failed,
    so a part that swallowed its cancellation held the sender still for good, logging nothing."""
    monkeypatch.setattr(stages, "STOP_TIMEOUT_S", 0.5)
    async with environment(kit, smtp_concurrency=2, send_lease_s=2, sender_poll_s=0.2) as env:
        alerts = await env.queue(kit, 2)
        relay = StubbornRelay()
        capture = JsonLines()
        sender_log = logging.getLogger("notifier")
        sender_log.addHandler(capture)
        try:
            await env.run_until_sent(env.sender(relay), alerts, before_stop=relay.let_go.set)
        finally:
            sender_log.removeHandler(capture)
        left = [line for line in capture.lines if "did not stop" in line["msg"]]
        assert [line["task"] for line in left] == [left[0]["task"]]
        assert left[0]["task"].startswith("notices: send"), left
        assert sorted(relay.delivered) == sorted(
            [(await env.notice(a))["notice_id"] for a in alerts]
        )


class JsonLines(logging.Handler):
    """The JSON lines a logger writes, formatted as they are emitted (inside the work's context, as
    the service's handler formats them)."""

    def __init__(self) -> None:
        super().__init__()
        self.formatter_ = JsonFormatter("notifier")
        self.lines: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(orjson.loads(self.formatter_.format(record)))


async def test_the_notice_sent_line_names_its_event_and_correlation_id(kit) -> None:
    async with environment(kit) as env:
        alerts = await env.queue(kit, 2)
        capture = JsonLines()
        sender_log = logging.getLogger("notifier.sender")
        sender_log.addHandler(capture)
        level = sender_log.level
        sender_log.setLevel(logging.INFO)
        try:
            assert await env.sender(SlowRelay(0)).send_due() == 2
        finally:
            sender_log.removeHandler(capture)
            sender_log.setLevel(level)
        lines = [line for line in capture.lines if line["msg"] == "notice sent"]
        assert {line["alert_id"] for line in lines} == set(alerts)
        for line in lines:
            notice = await env.notice(line["alert_id"])
            assert line["event_id"] == f"notice:{notice['notice_id']}:sent"
            async with env.sessions() as session:
                headers = await session.scalar(
                    text("SELECT headers FROM outbox WHERE event_id = :e"), {"e": line["event_id"]}
                )
            # The line's correlation id is the one its event was announced with.
            assert line["correlation_id"] == dict(headers)["ce_correlationid"]


async def test_each_smtp_transaction_is_a_span(kit) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind

    exported = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exported))
    async with environment(kit) as env:
        await env.queue(kit, 2)
        sender = env.sender(SlowRelay(0))
        sender.tracer = provider.get_tracer("test")
        assert await sender.send_due() == 2
        async with env.sessions() as session:
            notices = set((await session.execute(text("SELECT notice_id FROM notices"))).scalars())
    spans = [s for s in exported.get_finished_spans() if s.name == "smtp send"]
    assert {s.attributes["notice.id"] for s in spans if s.attributes} == notices
    assert all(s.kind is SpanKind.CLIENT for s in spans)
