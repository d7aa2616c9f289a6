"""Tracing pieces without I/O: the envelope's trace extension, the telemetry switch, outgoing HTTP
spans (recall_shared.telemetry)."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from recall_shared import events as ev
from recall_shared.envelope import FanOutHeaders, read_headers, wrap
from recall_shared.telemetry import Telemetry, context_of, trace_headers

PARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def _event() -> ev.AlertClosed:
    return ev.AlertClosed(
        alert_id="a-1", customer_id="c-1", recall_id="r", closed_at=datetime.now(UTC)
    )


def test_the_trace_context_travels_as_the_extension_and_the_plain_header() -> None:
    env = wrap(_event(), source="/t", trace_context={"traceparent": PARENT, "tracestate": "k=v"})
    headers = env.headers()
    names = [k for k, _ in headers]
    assert {"ce_traceparent", "traceparent", "ce_tracestate", "tracestate"} <= set(names)
    back = read_headers(headers, env.data)
    assert (back.traceparent, back.tracestate) == (PARENT, "k=v")
    assert back.trace_context == {"traceparent": PARENT, "tracestate": "k=v"}
    assert back.extra_headers == {"content-type": b"application/json"}


def test_records_without_it_or_with_only_the_plain_header_are_read() -> None:
    env = wrap(_event(), source="/t")
    assert not [k for k, _ in env.headers() if "trace" in k]  # optional: nothing when none
    assert read_headers(env.headers(), env.data).traceparent is None
    plain = [*env.headers(), ("traceparent", PARENT.encode())]
    assert read_headers(plain, env.data).traceparent == PARENT


def test_fan_out_headers_carry_the_current_span(settings_factory) -> None:
    telemetry = Telemetry(settings_factory(tracing_enabled=True))
    with telemetry.tracer.start_as_current_span("fan-out") as span:
        build = FanOutHeaders(
            type="alert.raised.v1",
            source="/t",
            time=datetime.now(UTC),
            correlation_id=None,
            causation_id=None,
        )
    headers = dict(build("e-1", "a-1"))
    ctx = span.get_span_context()
    assert headers["ce_traceparent"].startswith(
        f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-".encode()
    )


def test_tracing_is_off_by_default_and_costs_no_span(settings_factory) -> None:
    telemetry = Telemetry(settings_factory())
    assert not telemetry.enabled
    with telemetry.tracer.start_as_current_span("x"):
        assert trace_headers() == {}
    with pytest.raises(RuntimeError, match="tracing is off"):
        telemetry.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
    # An endpoint alone turns it on.
    assert Telemetry(settings_factory(otlp_traces_endpoint="http://127.0.0.1:1/v1/traces")).enabled


def test_a_malformed_traceparent_starts_no_parent() -> None:
    assert context_of({"traceparent": "00-zz-yy-01"}) is None
    assert context_of({}) is None
    assert context_of({"traceparent": PARENT}) is not None


async def test_outgoing_http_is_a_client_span_that_sends_the_context(settings_factory) -> None:
    telemetry = Telemetry(settings_factory(tracing_enabled=True))
    exported = InMemorySpanExporter()
    telemetry.add_span_processor(SimpleSpanProcessor(exported))
    sent: list[httpx.Request] = []

    def third_party(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={"ok": True})

    async with httpx.AsyncClient(
        transport=httpx.MockTransport(third_party), base_url="http://pay"
    ) as client:
        telemetry.instrument_httpx(client)
        with telemetry.tracer.start_as_current_span("refund"):
            assert (await client.post("/refunds", json={})).status_code == 200
    (outgoing,) = [s for s in exported.get_finished_spans() if s.kind is SpanKind.CLIENT]
    refund = next(s for s in exported.get_finished_spans() if s.name == "refund")
    assert outgoing.parent is not None and outgoing.parent.span_id == refund.context.span_id
    assert sent[0].headers["traceparent"].split("-")[2] == f"{outgoing.context.span_id:016x}"


def test_the_standard_otlp_variable_turns_tracing_on_for_every_service(
    settings_factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://collector:4318/v1/traces")
    settings = settings_factory()
    assert settings.otlp_traces_endpoint == "http://collector:4318/v1/traces"
    assert Telemetry(settings).enabled


def test_spans_are_exported_over_otlp_http(settings_factory) -> None:
    from recall_shared.trace_sink import TraceSink

    sink = TraceSink().start()
    try:
        telemetry = Telemetry(settings_factory(otlp_traces_endpoint=sink.endpoint))
        with telemetry.tracer.start_as_current_span("exported", kind=SpanKind.SERVER):
            pass
        telemetry.flush()
        (span,) = sink.received()
    finally:
        sink.stop()
    assert (span.name, span.service, span.kind, span.parent_span_id) == (
        "exported",
        "recall-intake",
        2,
        "",
    )
