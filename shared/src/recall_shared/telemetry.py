"""Tracing with OpenTelemetry: one tracer provider per service runtime, W3C trace context on every
Kafka record.

Off by default (``tracing_enabled`` false and no ``otlp_traces_endpoint``): the runtime then holds
the API's no-op provider, and the HTTP middleware, the consumer runner and the outbox relay skip
their span work altogether. On, the service records spans for HTTP requests (the correlation
middleware), database statements (its SQLAlchemy engine), Kafka publishing (the outbox relay) and
consuming (the runner, one span per applied event), and whatever a service adds (the notifier's SMTP
sends, outgoing HTTP of clients passed to :meth:`Telemetry.instrument_httpx`); they go to the OTLP
endpoint when one is set.

The context crosses Kafka in the CloudEvents distributed-tracing extension: ``traceparent`` and
``tracestate`` attributes on the envelope (``ce_traceparent`` headers), also as the plain W3C
``traceparent`` header other Kafka tools read. An event written into the outbox keeps the context
of the work that wrote it (the headers are stored with the row); the relay's publish span is its
child, and the record carries the publish span's context, so a consumer's span is a child of the
publish, which is a child of the write: one recall's trace runs through every service it reaches.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import Span, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from sqlalchemy.ext.asyncio import AsyncEngine

from recall_shared.settings import ServiceSettings

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
_PROPAGATOR = TraceContextTextMapPropagator()


class Telemetry:
    """A service's tracing (see the module's docstring). Built by its runtime, shut down with it."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.enabled = settings.tracing_enabled or bool(settings.otlp_traces_endpoint)
        self._sdk: TracerProvider | None = None
        self.provider: trace.TracerProvider
        if self.enabled:
            self._sdk = TracerProvider(
                resource=Resource.create(
                    {
                        "service.name": settings.service_name,
                        "deployment.environment.name": settings.environment,
                    }
                ),
                # A sampled upstream keeps its decision; a trace started here is sampled at the
                # ratio.
                sampler=ParentBased(TraceIdRatioBased(settings.trace_sample_ratio)),
            )
            if settings.otlp_traces_endpoint:
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
                    OTLPSpanExporter,
                )

                self._sdk.add_span_processor(
                    BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.otlp_traces_endpoint))
                )
            self.provider = self._sdk
        else:
            self.provider = trace.NoOpTracerProvider()
        self.tracer: Tracer = self.provider.get_tracer("recall_shared")

    def add_span_processor(self, processor: SpanProcessor) -> None:
        """Another destination for the spans (a test's in-memory exporter); tracing must be on."""
        if self._sdk is None:
            raise RuntimeError("tracing is off: set tracing_enabled or otlp_traces_endpoint")
        self._sdk.add_span_processor(processor)

    def instrument_engine(self, engine: AsyncEngine) -> None:
        """A span per statement of this engine (only this one: no process-wide patching)."""
        if not self.enabled:
            return
        from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer

        usage = (
            NoOpMeterProvider()
            .get_meter("recall_shared")
            .create_up_down_counter("db.client.connections.usage")
        )
        EngineTracer(
            self.provider.get_tracer("opentelemetry.instrumentation.sqlalchemy"),
            engine.sync_engine,
            usage,
        )

    def instrument_httpx(self, client: object) -> None:
        """A client span per request of this httpx client, with the trace context sent along."""
        if not self.enabled:
            return
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

        HTTPXClientInstrumentor.instrument_client(client, tracer_provider=self.provider)  # type: ignore[arg-type]

    def flush(self, timeout_s: float = 5.0) -> None:
        """Export what is buffered (the runtime stops; it may start again, so nothing is shut)."""
        if self._sdk is not None:
            self._sdk.force_flush(int(timeout_s * 1000))


def within(span: Span | None) -> contextlib.AbstractContextManager[object]:
    """``span`` made current for the block (not ended by it); nothing without one."""
    return trace.use_span(span, end_on_exit=False) if span is not None else contextlib.nullcontext()


def trace_headers(span: Span | None = None) -> dict[str, str]:
    """``traceparent`` (and ``tracestate`` when there is one) of ``span``, else of the current
    span; empty when there is none."""
    carrier: dict[str, str] = {}
    ctx = trace.set_span_in_context(span) if span is not None else None
    _PROPAGATOR.inject(carrier, context=ctx)
    return carrier


def context_of(headers: Mapping[str, str]) -> Context | None:
    """The remote parent a ``traceparent`` names, or None without a valid one."""
    if not headers.get(TRACEPARENT):
        return None
    ctx = _PROPAGATOR.extract(headers)
    return ctx if trace.get_current_span(ctx).get_span_context().is_valid else None
