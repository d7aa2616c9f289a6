"""Gauges read from the database on scrape (recall_shared.metrics.StateGauges), the shared outbox
age among them, on the real PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from recall_shared.metrics import GaugeQuery, Metrics

pytestmark = pytest.mark.integration

APPLIED_BY_SUBJECT = GaugeQuery(
    "applied_rows",
    "Rows of the test table by subject.",
    "SELECT subject, count(*) FROM applied GROUP BY subject",
    ("subject",),
)


def _value(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


async def test_outbox_age_and_service_gauges_follow_the_database(infra) -> None:
    metrics = Metrics("svc")
    metrics.add_state_gauges([APPLIED_BY_SUBJECT])
    await metrics.refresh(infra.engine, 0)
    assert _value(metrics, "outbox_oldest_age_seconds") == 0  # an empty outbox
    async with infra.engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO outbox (event_id, topic, key, event_type, headers, payload, "
                "created_at) VALUES ('e1', 't', 'k', 'x.v1', '[]', '\\x7b7d', "
                "now() - interval '90 seconds')"
            )
        )
        await conn.execute(text("INSERT INTO applied (event_id, subject) VALUES ('a', 's1')"))
        await conn.execute(text("INSERT INTO applied (event_id, subject) VALUES ('b', 's2')"))
    await metrics.refresh(infra.engine, 0)
    assert 89 < (_value(metrics, "outbox_oldest_age_seconds") or 0) < 200
    assert _value(metrics, "applied_rows", subject="s1") == 1
    async with infra.engine.begin() as conn:
        await conn.execute(text("DELETE FROM applied WHERE subject = 's1'"))
    await metrics.refresh(infra.engine, 60)
    assert _value(metrics, "applied_rows", subject="s1") == 1, "read at most once per interval"
    await metrics.refresh(infra.engine, 0)
    assert _value(metrics, "applied_rows", subject="s1") == 0, "a series whose row went drops to 0"
    assert _value(metrics, "applied_rows", subject="s2") == 1


async def test_an_unreachable_database_keeps_the_last_values(infra, settings_factory) -> None:
    from recall_shared.db import create_engine

    metrics = Metrics("svc")
    await metrics.refresh(infra.engine, 0)
    down = create_engine(settings_factory())  # 127.0.0.1:1: nothing listens
    try:
        await metrics.refresh(down, 0)
    finally:
        await down.dispose()
    assert _value(metrics, "outbox_oldest_age_seconds") == 0


def test_process_and_request_families_are_on_every_registry() -> None:
    text_ = Metrics("svc").render().decode()
    for family in (
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "python_info{",
        "python_gc_collections_total{",
        "# TYPE http_request_duration_seconds histogram",
        "outbox_oldest_age_seconds",
    ):
        assert f"\n{family}" in text_, family
