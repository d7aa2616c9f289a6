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
