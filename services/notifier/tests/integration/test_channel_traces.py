"""The sends after the email join the recall's trace as the ``smtp send`` does (test_send_traces):
the SMS sent in the email's place is an ``sms send`` client span with the provider's HTTP request
on it, each letter a ``letter write`` span (under a ``letter batch`` span of its own trace that
counts the letters), a reminder's email a span of the alert's trace, a remedy notice's a span of
its case transition's. On a real PostgreSQL, through
the real handlers, senders, the real Twilio adapter against the SMS sandbox and the letter batch;
only the SMTP relay is a double, the spans go to the SDK's in-memory exporter."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Span, SpanKind, StatusCode
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notifier import handlers
from notifier.clock import FakeClock
from notifier.letter_batch import LetterBatcher
from notifier.reminders import ReminderScheduler
from notifier.render import OutgoingMail
from notifier.sender import NoticeSender
from notifier.settings import Settings
from notifier.sms import TwilioSms
from notifier.sms_sandbox import INVALID_NUMBER, SandboxSms, create_sms_sandbox_app
from notifier.sms_sender import SmsSender
from recall_shared import events as ev
from recall_shared.db import create_engine, create_session_factory
from recall_shared.envelope import wrap
from recall_shared.metrics import Metrics
from recall_shared.outbox import Outbox
from recall_shared.telemetry import trace_headers
from recall_shared.testing import migrated_database

pytestmark = pytest.mark.integration

START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
ADDRESS = ev.PostalAddress(
    lines=["Hauptstraße 5"], postal_code="10115", city="Berlin", country="DE"
)


class AcceptingRelay:
    async def send(self, message: OutgoingMail) -> None:
        return None


@dataclass
class Traced:
    """A notifier's database and pieces, the spans they export, and an upstream span that stands
    for the matcher's relay publishing alert.raised.v1 (the record's ce_traceparent)."""

    kit: Any
    settings: Settings
    sessions: async_sessionmaker[AsyncSession]
    clock: FakeClock
    provider: TracerProvider
    exported: InMemorySpanExporter
    upstream: Span

    def emails(self, *, sms: bool = False) -> NoticeSender:
        return NoticeSender(
            settings=self.settings,
            session_factory=self.sessions,
            outbox=Outbox(source="/tests/notifier", service="notifier"),
            metrics=Metrics("notifier"),
            transport=AcceptingRelay(),
            clock=self.clock,
            tracer=self.provider.get_tracer("notifier"),
            sms_available=sms,
        )

    async def alert_for(self, contact: ev.CustomerUpdated, *, traced: bool) -> str:
        """The customer's contact and an alert raised for them (its event traced or not); the
        alert's id."""
        alert = self.kit.alert(contact.customer_id)
        raised = ev.AlertRaised(alert=alert)
        context = trace_headers(self.upstream) if traced else None
        async with self.sessions() as session, session.begin():
            await handlers.HANDLERS[ev.CustomerUpdated](
                session, contact, wrap(contact, source="/t")
            )
            await handlers.HANDLERS[ev.AlertRaised](
                session, raised, wrap(raised, source="/t", trace_context=context)
            )
        return str(alert.alert_id)

    async def notice_of(self, alert_id: str, channel: str, kind: str = "initial") -> str:
        async with self.sessions() as session:
            return str(
                await session.scalar(
                    text(
                        "SELECT notice_id FROM notices WHERE alert_id = :a AND channel = :c "
                        "AND kind = :k"
                    ),
                    {"a": alert_id, "c": channel, "k": kind},
                )
            )

    def spans(self, name: str) -> list[ReadableSpan]:
        return [s for s in self.exported.get_finished_spans() if s.name == name]

    def in_upstream_trace(self, span: ReadableSpan) -> bool:
        up = self.upstream.get_span_context()
        return (
            span.context is not None
            and span.context.trace_id == up.trace_id
            and span.parent is not None
            and span.parent.span_id == up.span_id
        )


@asynccontextmanager
async def traced_notifier(kit: Any, **overrides: Any) -> AsyncIterator[Traced]:
    exported = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exported))
    upstream = provider.get_tracer("purchase-matcher").start_span("publish alerts.v1")
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
            yield Traced(
                kit=kit,
                settings=settings,
                sessions=create_session_factory(engine),
                clock=FakeClock(START),
                provider=provider,
                exported=exported,
                upstream=upstream,
            )
        finally:
            await engine.dispose()
            upstream.end()


async def test_the_sms_send_is_a_client_span_of_the_recalls_trace(kit: Any) -> None:
    sandbox = SandboxSms()

    async def no_callbacks(url: str, data: dict[str, str], headers: dict[str, str]) -> None:
        return None

    sandbox.callback = no_callbacks
    async with (
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_sms_sandbox_app(sandbox)),
            base_url="http://sms-sandbox",
        ) as client,
        traced_notifier(
            kit,
            sms_provider="twilio",
            twilio_account_sid=sandbox.account_sid,
            twilio_auth_token=sandbox.auth_token,
            twilio_from="+15005550006",
            public_url="http://testserver",
        ) as t,
    ):
        alerts: dict[str, str] = {}
        for name, phone, traced in (
            ("traced", "+4915112345678", True),
            ("untraced", "+4915112345679", False),
            ("refused", INVALID_NUMBER, True),
        ):
            contact = kit.customer(kit.new_customer()).model_copy(update={"phone": phone})
            alerts[name] = await t.alert_for(contact, traced=traced)
        # No email address: each email notice falls back to an SMS, which keeps its context.
        assert await t.emails(sms=True).send_due() == 3
        sms = SmsSender(
            settings=t.settings,
            session_factory=t.sessions,
            outbox=Outbox(source="/tests/notifier", service="notifier"),
            provider=TwilioSms(
                account_sid=sandbox.account_sid,
                auth_token=sandbox.auth_token,
                from_="+15005550006",
                base_url="http://sms-sandbox",
                client=client,
            ),
            clock=t.clock,
            tracer=t.provider.get_tracer("notifier"),
        )
        assert await sms.send_due() == 3
        notices = {name: await t.notice_of(a, "sms") for name, a in alerts.items()}

    sends = {str((s.attributes or {})["notice.id"]): s for s in t.spans("sms send")}
    assert set(sends) == set(notices.values())
    url = f"http://sms-sandbox/2010-04-01/Accounts/{sandbox.account_sid}/Messages.json"
    for name, notice_id in notices.items():
        span = sends[notice_id]
        attributes = span.attributes or {}
        assert span.kind == SpanKind.CLIENT
        assert attributes["http.request.method"] == "POST"
        assert attributes["url.full"] == url
        assert (attributes["server.address"], attributes["server.port"]) == ("sms-sandbox", 80)
        if name == "untraced":
            assert span.parent is None, "no context on the event: the send starts a trace"
        else:
            assert t.in_upstream_trace(span), name
    accepted, refused = sends[notices["traced"]], sends[notices["refused"]]
    assert (accepted.attributes or {})["http.response.status_code"] == 201
    assert accepted.status.status_code == StatusCode.UNSET
    assert (refused.attributes or {})["http.response.status_code"] == 400
    assert (refused.attributes or {})["error.type"] == "400"
    assert refused.status.status_code == StatusCode.ERROR


async def test_each_letter_is_a_span_of_its_recalls_trace_under_a_batch_span(
    kit: Any, tmp_path: Path
) -> None:
    async with traced_notifier(kit, letter_dir=str(tmp_path)) as t:
        alerts: dict[str, str] = {}
        for name, traced in (("traced", True), ("untraced", False)):
            contact = kit.customer(kit.new_customer()).model_copy(
                update={"postal_address": ADDRESS}
            )
            alerts[name] = await t.alert_for(contact, traced=traced)
        # No digital contact: each email notice waits and a letter is queued in its place.
        assert await t.emails().send_due() == 2
        batcher = LetterBatcher(
            settings=t.settings,
            session_factory=t.sessions,
            outbox=Outbox(source="/tests/notifier", service="notifier"),
            clock=t.clock,
            tracer=t.provider.get_tracer("notifier"),
        )
        result = await batcher.run_batch()
        assert result.letters == 2
        notices = {name: await t.notice_of(a, "letter") for name, a in alerts.items()}

    (batch,) = t.spans("letter batch")
    assert batch.parent is None, "a batch is a trace of its own"
    assert (batch.attributes or {})["letter.batch.letters"] == 2
    assert (batch.attributes or {})["letter.batch.id"] == result.batch_id
    assert batch.context is not None
    writes = {notice_ids(s): s for s in t.spans("letter write")}
    assert set(writes) == {(n,) for n in notices.values()}
    in_recall, untraced = writes[(notices["traced"],)], writes[(notices["untraced"],)]
    assert t.in_upstream_trace(in_recall)
    assert [link.context.span_id for link in in_recall.links] == [batch.context.span_id]
    assert untraced.parent is not None and untraced.parent.span_id == batch.context.span_id


def notice_ids(span: ReadableSpan) -> tuple[str, ...]:
    ids = (span.attributes or {})["notice.ids"]
    assert isinstance(ids, tuple)
    return tuple(str(i) for i in ids)


async def test_a_reminder_continues_its_alerts_trace(kit: Any) -> None:
    async with traced_notifier(kit) as t:
        contact = kit.customer(kit.new_customer(), email_=kit.new_email())
        alert_id = await t.alert_for(contact, traced=True)
        emails = t.emails()
        assert await emails.send_due() == 1, "the initial notice, which starts the schedule"
        t.clock.advance(days=8)  # past the first reminder (7 days)
        assert (
            await ReminderScheduler(
                settings=t.settings, session_factory=t.sessions, clock=t.clock
            ).tick()
            == 1
        )
        assert await emails.send_due() == 1
        reminder = await t.notice_of(alert_id, "email", kind="reminder")

    sends = {str((s.attributes or {})["notice.id"]): s for s in t.spans("smtp send")}
    assert t.in_upstream_trace(sends[reminder]), "the reminder's send is in the recall's trace"


async def test_a_remedy_notice_joins_the_trace_of_its_case_transition(kit: Any) -> None:
    async with traced_notifier(kit) as t:
        contact = kit.customer(kit.new_customer(), email_=kit.new_email())
        alert_id = await t.alert_for(contact, traced=False)
        emails = t.emails()
        assert await emails.send_due() == 1, "the recall notice"
        refunded = ev.RemedyCaseTransitioned(
            case_id=str(uuid.uuid4()),
            request_id="req-1",
            alert_id=alert_id,
            customer_id=contact.customer_id,
            recall_id="rc-1",
            seller_id="seller-1",
            remedy="refund_on_destruction",
            transition="refund",
            from_state="item_received",
            state="refunded",
            refunded_amount=Decimal("39.98"),
            currency="EUR",
            occurred_at=START,
        )
        # Stands for refund-logistics' relay publishing the transition.
        envelope = wrap(refunded, source="/t", trace_context=trace_headers(t.upstream))
        async with t.sessions() as session, session.begin():
            await handlers.HANDLERS[ev.RemedyCaseTransitioned](session, refunded, envelope)
        assert await emails.send_due() == 1
        confirmation = await t.notice_of(alert_id, "email", kind="refund_confirmed")

    sends = {str((s.attributes or {})["notice.id"]): s for s in t.spans("smtp send")}
    assert t.in_upstream_trace(sends[confirmation])
