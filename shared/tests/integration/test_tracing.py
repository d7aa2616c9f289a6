"""Traces across a hop through the outbox, on the real PostgreSQL and Kafka: an HTTP request writes
an event, the relay publishes it, another service's runner applies it; every span is one trace, the
publish span a child of the request's and the consumer's a child of the publish. The spans are read
with the SDK's own in-memory exporter (the one OpenTelemetry ships for tests)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from recall_shared import events as ev
from recall_shared.dead_letters import Record
from recall_shared.http import RuntimeDep, SessionDep, install_common
from recall_shared.service import ServiceRuntime
from recall_shared.telemetry import Telemetry
from recall_shared.testing import read_topic
from recall_shared.topics import ALERTS, dead_letter_topic

pytestmark = pytest.mark.integration

# A caller's own trace (W3C example ids): the request's span must continue it.
CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER = f"00-{CALLER_TRACE}-00f067aa0ba902b7-01"


def _app(runtime: ServiceRuntime) -> FastAPI:
    app = FastAPI()
    install_common(app, runtime)

    @app.post("/alerts/{alert_id}/close")
    async def close(alert_id: str, session: SessionDep, rt: RuntimeDep) -> dict[str, str]:
        async with session.begin():
            event = ev.AlertClosed(
                alert_id=alert_id, customer_id="c-1", recall_id="r", closed_at=datetime.now(UTC)
            )
            return {"event_id": await rt.outbox.add(session, event)}

    return app


def _one(spans: list[ReadableSpan], name: str) -> ReadableSpan:
    found = [s for s in spans if s.name == name]
    assert len(found) == 1, (name, [s.name for s in spans])
    return found[0]


async def test_a_consume_span_is_a_child_of_the_publish_through_the_outbox(infra, caplog) -> None:
    await infra.create_topics(ALERTS, dead_letter_topic("recall-intake"))
    topic = infra.topic(ALERTS)
    exported = InMemorySpanExporter()
    caplog.set_level(logging.INFO, logger="recall_shared")
    writer = ServiceRuntime(infra.settings(tracing_enabled=True))
    writer.telemetry.add_span_processor(SimpleSpanProcessor(exported))
    # The consuming side is another service: its own provider, the same exporter.
    reader = Telemetry(infra.settings(tracing_enabled=True, service_name="customer-api"))
    reader.add_span_processor(SimpleSpanProcessor(exported))
    reader.instrument_engine(infra.engine)
    producer = await infra.producer()
    runner = infra.runner({ev.AlertClosed: infra.inserting_handler}, [ALERTS], producer=producer)
    runner.tracer = reader.tracer
    app = _app(writer)
    await writer.start()
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://svc"
        ) as client:
            resp = await client.post("/alerts/al-9/close", headers={"traceparent": CALLER})
            assert resp.status_code == 200, resp.text
        event_id = resp.json()["event_id"]
        ((_, env, _),) = await read_topic(topic, count=1, timeout=15)
        assert env is not None and env.id == event_id
        record = Record(topic, 0, 0, b"c-1", env.data, env.headers())
        assert await runner.process(record) == "applied"
    finally:
        await writer.stop()
    spans = list(exported.get_finished_spans())
    server = _one(spans, "POST /alerts/{alert_id}/close")
    publish = _one(spans, f"publish {topic}")
    process = _one(spans, f"process {topic}")
    assert {format(s.context.trace_id, "032x") for s in spans} == {CALLER_TRACE}, [
        (s.name, s.attributes) for s in spans if s.context.trace_id != int(CALLER_TRACE, 16)
    ]
    assert server.kind is SpanKind.SERVER and server.parent is not None
    assert server.attributes is not None and server.attributes["http.route"] == (
        "/alerts/{alert_id}/close"
    )
    assert publish.kind is SpanKind.PRODUCER and publish.parent is not None
    assert publish.parent.span_id == server.context.span_id
    assert process.kind is SpanKind.CONSUMER and process.parent is not None
    assert process.parent.span_id == publish.context.span_id
    assert process.resource.attributes["service.name"] == "customer-api"
    assert server.resource.attributes["service.name"] == "recall-intake"
    # Database statements hang under the work that ran them, on both sides of the hop.
    statements = [s for s in spans if s.kind is SpanKind.CLIENT and s.parent is not None]
    assert any(s.parent.span_id == server.context.span_id for s in statements)  # type: ignore[union-attr]
    assert any(s.parent.span_id == process.context.span_id for s in statements)  # type: ignore[union-attr]
    # The record carries the publish span's context, as the extension and as the plain header.
    expected = f"00-{CALLER_TRACE}-{publish.context.span_id:016x}-01"
    headers = dict(env.headers())
    assert env.traceparent == expected
    # The request's access line and the event's line name their spans.
    lines = {r.getMessage(): r for r in caplog.records if r.name.startswith("recall_shared.")}
    assert lines["request"].span_id == f"{server.context.span_id:016x}"
    assert lines["event handled"].span_id == f"{process.context.span_id:016x}"
    assert lines["event handled"].trace_id == CALLER_TRACE
    assert headers["ce_traceparent"] == headers["traceparent"] == expected.encode()


async def test_with_tracing_off_no_record_carries_a_trace(infra) -> None:
    await infra.create_topics(ALERTS, dead_letter_topic("recall-intake"))
    runtime = ServiceRuntime(infra.settings())
    assert not runtime.telemetry.enabled
    app = _app(runtime)
    await runtime.start()
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://svc"
        ) as client:
            resp = await client.post("/alerts/al-1/close", headers={"traceparent": CALLER})
            assert resp.status_code == 200
        ((_, env, raw),) = await read_topic(infra.topic(ALERTS), count=1, timeout=15)
    finally:
        await runtime.stop()
    assert env is not None and env.traceparent is None
    assert not {k for k, _ in raw.headers if "trace" in k}
