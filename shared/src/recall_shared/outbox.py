"""Transactional outbox and its relay.

A service writes its events as rows in the same transaction as the change they describe, and sends a
``NOTIFY`` that PostgreSQL delivers only when that transaction commits. The relay wakes on it (with
a slow poll as a safety net), publishes pending rows in id order with the idempotent producer, waits
for every acknowledgement, then deletes them. A crash before the delete republishes those rows with
the same ``ce_id``, which the consumers' inbox discards: delivery is at least once, effects exactly
once.

Only one relay per service publishes at a time (a PostgreSQL advisory lock), so per-key order holds
even with several replicas.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import asyncpg
import orjson
from aiokafka import AIOKafkaProducer
from opentelemetry.trace import Span, SpanKind, StatusCode
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from recall_shared.db import asyncpg_dsn
from recall_shared.envelope import (
    TRACE_HEADERS,
    Headers,
    check_emittable,
    trace_context_headers,
    wrap,
)
from recall_shared.events import Event
from recall_shared.listening import keep_listening
from recall_shared.logging import current_correlation_id
from recall_shared.metrics import Metrics
from recall_shared.telemetry import Telemetry, context_of, trace_headers
from recall_shared.waits import wait_set

log = logging.getLogger(__name__)

_INSERT = text(
    "INSERT INTO outbox (event_id, topic, key, event_type, headers, payload) "
    "VALUES (:event_id, :topic, :key, :event_type, CAST(:headers AS jsonb), :payload) "
    "ON CONFLICT (event_id) DO NOTHING"
)


# (row ids, acknowledgement futures, topics, publish spans) of one batch in flight
_Sent = tuple[list[int], list[asyncio.Future], list[str], list[Span]]


def notify_channel(service: str) -> str:
    return "outbox_" + service.replace("-", "_")


class Outbox:
    """Writes events into the caller's transaction."""

    def __init__(self, *, source: str, service: str, topic_prefix: str = "") -> None:
        self.source = source
        self.topic_prefix = topic_prefix
        self.channel = notify_channel(service)

    async def add(
        self,
        session: AsyncSession,
        event: Event,
        *,
        event_id: str | None = None,
        correlation_id: str | None = None,
        causation_id: str | None = None,
        time: datetime | None = None,
    ) -> str:
        """Add one event; returns its id. A deterministic ``event_id`` makes re-emission a no-op.

        Raises InvalidEvent, writing nothing, for an event its consumers would refuse."""
        (eid,) = await self.add_many(
            session,
            [(event, event_id)],
            correlation_id=correlation_id,
            causation_id=causation_id,
            time=time,
        )
        return eid

    async def add_many(
        self,
        session: AsyncSession,
        events: Iterable[tuple[Event, str | None]],
        *,
        correlation_id: str | None = None,
        causation_id: str | None = None,
        time: datetime | None = None,
    ) -> list[str]:
        cid = correlation_id or current_correlation_id()
        # The row keeps the trace context of the work writing it (recall_shared.telemetry).
        trace_context = trace_headers()
        rows: list[dict[str, Any]] = []
        for event, event_id in events:
            env = wrap(
                event,
                source=self.source,
                correlation_id=cid,
                causation_id=causation_id,
                event_id=event_id,
                time=time,
                trace_context=trace_context,
            )
            check_emittable(env, type(event))
            rows.append(
                {
                    "event_id": env.id,
                    "topic": self.topic_prefix + event.topic,
                    "key": event.partition_key(),
                    "event_type": env.type,
                    "headers": orjson.dumps([[k, v.decode()] for k, v in env.headers()]).decode(),
                    "payload": env.data,
                }
            )
        if rows:
            await session.execute(_INSERT, rows)
            await session.execute(text("SELECT pg_notify(:ch, '')"), {"ch": self.channel})
        return [r["event_id"] for r in rows]


class OutboxRelay:
    """Publishes outbox rows to Kafka in order. Run one per service process; only one publishes at a
    time."""

    def __init__(
        self,
        *,
        database_url: str,
        producer: AIOKafkaProducer,
        service: str,
        metrics: Metrics | None = None,
        batch_size: int = 500,
        fallback_poll_s: float = 2.0,
        telemetry: Telemetry | None = None,
    ) -> None:
        self.dsn = asyncpg_dsn(database_url)
        self.tracer = telemetry.tracer if telemetry is not None and telemetry.enabled else None
        self.producer = producer
        self.service = service
        self.channel = notify_channel(service)
        self.metrics = metrics
        self.batch_size = batch_size
        self.fallback_poll_s = fallback_poll_s
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._lock_key = int.from_bytes(
            hashlib.sha256(self.channel.encode()).digest()[:8], "big", signed=True
        )
        self.published_total = 0

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        """Relay until stopped; reconnects after database or Kafka failures with backoff."""
        await keep_listening(
            self.dsn,
            self.channel,
            self._run_connected,
            on_notify=self._wake.set,
            stopping=self._stopping,
            name="outbox relay",
            logger=log,
        )

    async def _run_connected(self, conn: asyncpg.Connection) -> None:
        # Wait for leadership: only the holder of the advisory lock publishes (the lock goes with
        # the connection).
        while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", self._lock_key):
            if await self._sleep(self.fallback_poll_s):
                return
        self._wake.set()  # rows may have been written while another relay led
        while not self._stopping.is_set():
            await wait_set(self._wake, self.fallback_poll_s)
            self._wake.clear()
            if self._stopping.is_set():
                break
            await self.publish_pending(conn)

    async def _sleep(self, seconds: float) -> bool:
        """Sleep unless stopped; True when stopping."""
        return await wait_set(self._stopping, seconds)

    async def publish_pending(self, conn: asyncpg.Connection) -> int:
        """Publish every pending row in id order; returns how many.

        Pipelined: while the broker acknowledges one batch, the next is read and sent, so the
        database and Kafka round trips overlap. A batch is deleted only after all its
        acknowledgements.
        """
        published = 0
        last_id = 0
        inflight: _Sent | None = None
        while True:
            rows = await conn.fetch(
                "SELECT id, topic, key, headers, payload FROM outbox "
                "WHERE id > $1 ORDER BY id LIMIT $2",
                last_id,
                self.batch_size,
            )
            sent: _Sent | None = None
            if rows:
                futures, spans = [], []
                for row in rows:
                    headers = [(k, v.encode()) for k, v in orjson.loads(row["headers"])]
                    if self.tracer is not None:
                        headers, span = self._publish_span(row["topic"], headers)
                        if span is not None:
                            spans.append(span)
                    futures.append(
                        await self.producer.send(
                            row["topic"],
                            value=bytes(row["payload"]),
                            key=row["key"].encode(),
                            headers=headers,
                        )
                    )
                last_id = rows[-1]["id"]
                sent = ([r["id"] for r in rows], futures, [r["topic"] for r in rows], spans)
            if inflight is not None:
                published += await self._confirm(conn, *inflight)
            inflight = sent
            if sent is None:
                break
        if self.metrics:
            self.metrics.outbox_backlog.set(await conn.fetchval("SELECT count(*) FROM outbox"))
        return published

    def _publish_span(self, topic: str, headers: Headers) -> tuple[Headers, Span | None]:
        """A publish span, child of the work that wrote the row (its stored trace context); the
        record then carries the publish span's context. A row written without one is sent as it
        is."""
        assert self.tracer is not None
        stored = {k: v.decode() for k, v in headers if k in TRACE_HEADERS}
        parent = context_of(
            {k.removeprefix("ce_"): v for k, v in stored.items() if k.startswith("ce_")}
        )
        if parent is None:
            return headers, None
        span = self.tracer.start_span(
            f"publish {topic}",
            context=parent,
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": "kafka",
                "messaging.operation.type": "send",
                "messaging.destination.name": topic,
                "messaging.message.id": next((v.decode() for k, v in headers if k == "ce_id"), ""),
            },
        )
        carrier = trace_headers(span)
        kept = [(k, v) for k, v in headers if k not in TRACE_HEADERS]
        return kept + trace_context_headers(
            carrier.get("traceparent"), carrier.get("tracestate")
        ), span

    async def _confirm(
        self,
        conn: asyncpg.Connection,
        ids: list[int],
        futures: list[asyncio.Future],
        topics: list[str],
        spans: list[Span],
    ) -> int:
        try:
            # every row acknowledged by the broker (acks=all) before delete
            await asyncio.gather(*futures)
        except BaseException as exc:
            for span in spans:
                span.set_status(StatusCode.ERROR, repr(exc)[:200])
                span.end()
            raise
        for span in spans:
            span.end()
        await conn.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", ids)
        self.published_total += len(ids)
        if self.metrics:
            for topic in topics:
                self.metrics.events_produced.labels(topic).inc()
        return len(ids)
