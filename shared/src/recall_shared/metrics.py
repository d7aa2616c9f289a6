"""Prometheus metrics, one registry per service instance (no process-global registry).

The families every service has are defined here (:class:`Metrics`); a service's own are defined in
its ``metrics.py``, on the same registry. Two ways a service counts its domain:

- :func:`count_on_commit`: a counter that moves when the transaction that did the work commits
  (a rolled-back or retried batch counts nothing);
- :class:`StateGauges`: gauges read from the database by SQL (how many notices wait, the oldest
  pending refund), refreshed when ``/metrics`` is scraped, at most once per
  ``metrics_refresh_interval_s``: the database is the one place those facts live.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)


class Metrics:
    def __init__(self, service: str) -> None:
        self.service = service
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        # The process itself: CPU, memory, open files, start time; the interpreter and its GC.
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        GCCollector(registry=r)
        self.state_gauges: list[StateGauges] = [StateGauges(r, OUTBOX_GAUGES)]
        self._refreshed_at = -float("inf")
        self._refreshing = asyncio.Lock()
        self.events_consumed = Counter(
            "events_consumed_total",
            "Events handled (effects committed).",
            ["topic", "event_type"],
            registry=r,
        )
        self.events_duplicate = Counter(
            "events_duplicate_total",
            "Events skipped because the inbox had seen their id.",
            ["topic"],
            registry=r,
        )
        self.events_ignored = Counter(
            "events_ignored_total",
            "Events of types this service does not handle.",
            ["topic", "event_type"],
            registry=r,
        )
        self.events_produced = Counter(
            "events_produced_total", "Events published to Kafka.", ["topic"], registry=r
        )
        self.events_failed = Counter(
            "events_failed_total",
            "Handler attempts that raised (retried or dead-lettered).",
            ["topic"],
            registry=r,
        )
        self.events_dead_lettered = Counter(
            "events_dead_lettered_total",
            "Messages sent to the dead-letter topic.",
            ["topic", "reason"],
            registry=r,
        )
        self.outbox_backlog = Gauge("outbox_backlog", "Outbox rows not yet published.", registry=r)
        self.consumer_lag = Gauge(
            "consumer_lag",
            "High-water mark minus position, per partition.",
            ["topic", "partition"],
            registry=r,
        )
        self.handle_seconds = Histogram(
            "event_handle_seconds",
            "Time to apply one batch of events, transaction included; observed under each topic"
            " the batch holds records of.",
            ["topic"],
            registry=r,
        )
        self.batch_size = Histogram(
            "consumer_batch_records",
            "Records of the topic in one consumer transaction.",
            ["topic"],
            buckets=(1, 5, 10, 50, 100, 250, 500, 1000),
            registry=r,
        )
        self.consumer_waits = Counter(
            "consumer_infrastructure_waits_total",
            "Times a partition paused to wait out an infrastructure failure, by cause.",
            ["cause"],
            registry=r,
        )
        self.dead_letters_pending = Gauge(
            "dead_letters_pending",
            "Dead letters of a consumer group not yet redriven, by original topic.",
            ["group", "topic"],
            registry=r,
        )
        self.http_requests = Counter(
            "http_requests_total", "HTTP requests.", ["method", "route", "status"], registry=r
        )
        self.http_duration = Histogram(
            "http_request_duration_seconds",
            "Time to answer an HTTP request, by route template (not the raw path).",
            ["method", "route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )

    def add_state_gauges(self, queries: Sequence[GaugeQuery]) -> StateGauges:
        """A service's gauges read from its database (see :class:`StateGauges`)."""
        gauges = StateGauges(self.registry, queries)
        self.state_gauges.append(gauges)
        return gauges

    async def refresh(self, engine: AsyncEngine, min_interval_s: float) -> None:
        """Re-read the state gauges unless they were read less than ``min_interval_s`` ago (scrapes
        of several Prometheis share one read). A failed read keeps the last values, and is
        logged."""
        async with self._refreshing:
            if time.monotonic() - self._refreshed_at < min_interval_s:
                return
            try:
                async with asyncio.timeout(5), engine.connect() as conn:
                    for gauges in self.state_gauges:
                        await gauges.refresh(conn)
            except Exception as exc:
                log.warning("reading the state gauges failed", extra={"error": repr(exc)[:300]})
                return
            self._refreshed_at = time.monotonic()

    def render(self) -> bytes:
        return generate_latest(self.registry)


@dataclass(frozen=True)
class GaugeQuery:
    """One gauge family read from the database: ``sql`` returns one row per series, the label
    values in ``labels`` order, then the value."""

    name: str
    documentation: str
    sql: str
    labels: tuple[str, ...] = ()
    # True for labels whose values come and go for good (a recall's id): a series whose row
    # disappears is removed, so the family stays as small as the rows, instead of dropping to 0.
    forget_gone: bool = False


class StateGauges:
    """Gauges whose values are rows of SQL. A series whose row disappears (no notice is
    ``failed`` any more) drops to 0 rather than keeping its last value, or is removed
    (``forget_gone``)."""

    def __init__(self, registry: CollectorRegistry, queries: Sequence[GaugeQuery]) -> None:
        self.queries = list(queries)
        self.gauges = {
            q.name: Gauge(q.name, q.documentation, list(q.labels), registry=registry)
            for q in self.queries
        }
        self._seen: dict[str, set[tuple[str, ...]]] = {q.name: set() for q in self.queries}

    async def refresh(self, conn: AsyncConnection) -> None:
        for q in self.queries:
            rows = (await conn.execute(text(q.sql))).all()
            gauge, seen = self.gauges[q.name], set()
            for row in rows:
                *labels, value = row
                key = tuple("" if v is None else str(v) for v in labels)
                seen.add(key)
                child = gauge.labels(*key) if q.labels else gauge
                child.set(float(value or 0))
            for gone in self._seen[q.name] - seen:
                if q.forget_gone:
                    gauge.remove(*gone)
                else:
                    gauge.labels(*gone).set(0)
            if not q.labels and not rows:
                gauge.set(0)
            self._seen[q.name] = seen if q.labels else set()


# Every service has an outbox: its oldest unpublished row says whether the relay keeps up.
OUTBOX_GAUGES = (
    GaugeQuery(
        "outbox_oldest_age_seconds",
        "Age of the oldest outbox row not yet published (0 when the outbox is empty).",
        "SELECT coalesce(extract(epoch FROM now() - min(created_at)), 0) FROM outbox",
    ),
)


def count_on_commit(
    session: AsyncSession, counter: Counter, amount: float = 1, *labels: str
) -> None:
    """Add ``amount`` to ``counter`` (its ``labels`` series) when the session's transaction
    commits; nothing when it rolls back (a retried batch is then counted once, when it sticks)."""
    if not amount:
        return
    sync = session.sync_session
    if not sync.info.get(_LISTENING):
        # Once per session (listeners cannot be removed while they run); they go with it.
        sync.info[_LISTENING] = True
        event.listen(sync, "after_commit", _apply_pending)
        event.listen(sync, "after_rollback", _drop_pending)
    sync.info.setdefault(_PENDING, []).append((counter, labels, amount))


_PENDING = "recall_shared.metrics.pending"
_LISTENING = "recall_shared.metrics.listening"


def _apply_pending(sync: Session) -> None:
    for counter, labels, amount in sync.info.pop(_PENDING, ()):
        (counter.labels(*labels) if labels else counter).inc(amount)


def _drop_pending(sync: Session) -> None:
    sync.info.pop(_PENDING, None)
