"""A slot's batch mixes the topics keyed alike (customer-api reads customers.v1 and alerts.v1 on
the same slots): each redelivery the inbox drops is counted in ``events_duplicate_total`` under its
own topic. Counted under the batch's first record's topic, the crash test's alerts.v1 figure fell
short of the inbox's logged duplicates in full-suite runs (484 of 1,132). Real PostgreSQL; the
records are handed to the runner as Kafka would."""

from __future__ import annotations

import pytest

from recall_shared import envelope
from recall_shared import events as ev
from recall_shared.dead_letters import Record
from recall_shared.sample_events import alert_closed
from recall_shared.topics import ALERTS, CUSTOMERS

pytestmark = pytest.mark.integration


def _record(topic: str, offset: int, event: ev.Event, event_id: str) -> Record:
    env = envelope.wrap(event, source="/tests", event_id=event_id)
    return Record(topic, 0, offset, event.partition_key().encode(), env.data, env.headers())


async def test_each_dropped_redelivery_counts_under_its_own_topic(infra, metric_total) -> None:
    alerts, customers = infra.topic(ALERTS), infra.topic(CUSTOMERS)
    runner = infra.runner(
        {ev.AlertClosed: infra.inserting_handler}, [CUSTOMERS, ALERTS], producer=None
    )
    first = [_record(alerts, i, alert_closed(f"al-{i}", "c-1"), f"ev-{i}") for i in range(3)]
    assert (await runner.process_batch(first))["applied"] == 3

    # Redelivered behind a record of the other topic: it leads the batch.
    leader = _record(customers, 7, alert_closed("al-x", "c-1"), "ev-x")
    again = [leader] + [
        _record(alerts, 10 + i, alert_closed(f"al-{i}", "c-1"), f"ev-{i}") for i in range(3)
    ]
    outcomes = await runner.process_batch(again)
    assert outcomes == {"applied": 1, "duplicate": 3}
    assert metric_total(runner.metrics, "events_duplicate", topic=alerts) == 3
    assert metric_total(runner.metrics, "events_duplicate", topic=customers) == 0
    assert await infra.applied_count() == 4


def _histogram_count(metrics, name: str, topic: str) -> float:
    return sum(
        s.value
        for family in metrics.registry.collect()
        if family.name == name
        for s in family.samples
        if s.name == f"{name}_count" and s.labels.get("topic") == topic
    )


def _histogram_sum(metrics, name: str, topic: str) -> float:
    return sum(
        s.value
        for family in metrics.registry.collect()
        if family.name == name
        for s in family.samples
        if s.name == f"{name}_sum" and s.labels.get("topic") == topic
    )


async def test_batch_metrics_count_each_topic_of_a_mixed_batch(infra) -> None:
    """``consumer_batch_records`` and ``event_handle_seconds`` under each topic the batch holds,
    with that topic's records, not all under the first record's topic."""
    alerts, customers = infra.topic(ALERTS), infra.topic(CUSTOMERS)
    runner = infra.runner(
        {ev.AlertClosed: infra.inserting_handler}, [CUSTOMERS, ALERTS], producer=None
    )
    batch = [_record(customers, 0, alert_closed("al-c", "c-1"), "ev-c")] + [
        _record(alerts, i, alert_closed(f"al-{i}", "c-1"), f"ev-{i}") for i in range(3)
    ]
    assert (await runner.process_batch(batch))["applied"] == 4
    m = runner.metrics
    assert _histogram_sum(m, "consumer_batch_records", customers) == 1
    assert _histogram_sum(m, "consumer_batch_records", alerts) == 3
    assert _histogram_count(m, "event_handle_seconds", customers) == 1
    assert _histogram_count(m, "event_handle_seconds", alerts) == 1
