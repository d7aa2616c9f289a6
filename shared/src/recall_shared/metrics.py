"""Prometheus metrics, one registry per service instance (no process-global registry)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    def __init__(self, service: str) -> None:
        self.service = service
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
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
            "Time to apply one batch of events, transaction included.",
            ["topic"],
            registry=r,
        )
        self.batch_size = Histogram(
            "consumer_batch_records",
            "Records applied in one consumer transaction.",
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

    def render(self) -> bytes:
        return generate_latest(self.registry)
