"""A notice's SMTP send is a span of the trace its alert event came in (the event's
``ce_traceparent``, kept on the notice row: notifier.notice_traces), not a trace of its own; a
notice whose event carried no trace context starts one. On a real PostgreSQL, through the real
handlers and sender; only the relay is a double."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import text

from notifier import handlers
from notifier.clock import FakeClock
from notifier.render import OutgoingMail
from notifier.sender import NoticeSender
from notifier.settings import Settings
from recall_shared import events as ev
from recall_shared.db import create_engine, create_session_factory
from recall_shared.envelope import wrap
from recall_shared.metrics import Metrics
from recall_shared.outbox import Outbox
from recall_shared.telemetry import trace_headers
from recall_shared.testing import migrated_database

pytestmark = pytest.mark.integration


class AcceptingRelay:
    async def send(self, message: OutgoingMail) -> None:
        return None


async def test_the_smtp_send_joins_the_trace_of_the_alert_event(kit: Any) -> None:
    exported = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exported))
    # Stands for the matcher's relay publishing alert.raised.v1 (the record's ce_traceparent).
    upstream = provider.get_tracer("purchase-matcher").start_span("publish alerts.v1")
    traced, untraced = kit.new_customer(), kit.new_customer()
    alerts = {cid: kit.alert(cid, admin_id=f"{cid}-admin") for cid in (traced, untraced)}
    async with migrated_database(kit.migrations, prefix="notifier") as url:
        settings = Settings(
            database_url=url,
            environment="test",
            log_json=False,
            log_level="WARNING",
            customer_portal_url=kit.portal,
        )
        engine = create_engine(settings)
        sessions = create_session_factory(engine)
        try:
            async with sessions() as session, session.begin():
                for cid, alert in alerts.items():
                    for who in (cid, f"{cid}-admin"):
                        contact = kit.customer(who, email_=kit.new_email())
                        await handlers.HANDLERS[ev.CustomerUpdated](
                            session, contact, wrap(contact, source="/t")
                        )
                    raised = ev.AlertRaised(alert=alert)
                    context = trace_headers(upstream) if cid == traced else None
                    await handlers.HANDLERS[ev.AlertRaised](
                        session, raised, wrap(raised, source="/t", trace_context=context)
                    )
            sender = NoticeSender(
                settings=settings,
                session_factory=sessions,
                outbox=Outbox(source="/tests/notifier", service="notifier"),
                metrics=Metrics("notifier"),
                transport=AcceptingRelay(),
                clock=FakeClock(),
                tracer=provider.get_tracer("notifier"),
            )
            assert await sender.send_due() == 4, "purchaser and account admin of each alert"
            async with sessions() as session:
                notices_of = {
                    cid: set(
                        (
                            await session.execute(
                                text("SELECT notice_id FROM notices WHERE alert_id = :a"),
                                {"a": alert.alert_id},
                            )
                        ).scalars()
                    )
                    for cid, alert in alerts.items()
                }
        finally:
            await engine.dispose()
    upstream.end()
    sends = {
        str((s.attributes or {})["notice.id"]): s
        for s in exported.get_finished_spans()
        if s.name == "smtp send"
    }
    assert set(sends) == notices_of[traced] | notices_of[untraced]
    trace_id = upstream.get_span_context().trace_id
    for notice_id in notices_of[traced]:
        span = sends[notice_id]
        assert span.context is not None and span.context.trace_id == trace_id
        assert (
            span.parent is not None and span.parent.span_id == upstream.get_span_context().span_id
        )
    for notice_id in notices_of[untraced]:
        span = sends[notice_id]
        assert span.parent is None, "no context on the event: the send starts a trace"
        assert span.context is not None and span.context.trace_id != trace_id
