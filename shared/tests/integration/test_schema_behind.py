"""New code on a database not migrated yet (a rolling upgrade): the handler's table or column does
not exist. No record can cause that, so the runner waits it out instead of dead-lettering every
record, says so in its health, and applies them all once the migration has run. Real Kafka and
PostgreSQL: the table is really missing, then really created."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from recall_shared import events as ev
from recall_shared.sample_events import alert_closed
from recall_shared.testing import eventually
from recall_shared.topics import ALERTS, dead_letter_topic

pytestmark = pytest.mark.integration


async def test_a_missing_table_is_waited_out_until_the_migration_ran(
    infra, run_task, metric_total, topic_end_offsets
) -> None:
    dlq = dead_letter_topic("recall-intake")
    await infra.create_topics(ALERTS, dlq)
    producer = await infra.producer()

    async def handler(session, event, env) -> None:
        await session.execute(
            text("INSERT INTO migrated_later (event_id) VALUES (:id)"), {"id": env.id}
        )

    for i in range(5):
        await infra.send(producer, ALERTS, alert_closed(f"al-{i}", f"cust-{i}"))
    runner = infra.runner(
        {ev.AlertClosed: handler}, [ALERTS], producer=producer, consumer_max_attempts=2
    )
    async with run_task(runner):

        async def waiting() -> bool:
            return "waiting out UndefinedTableError" in runner.health()

        await eventually(waiting, timeout=30)
        assert metric_total(runner.metrics, "consumer_infrastructure_waits", cause="database") > 0
        async with infra.engine.begin() as conn:
            await conn.execute(text("CREATE TABLE migrated_later (event_id text PRIMARY KEY)"))

        async def all_in() -> bool:
            return await infra.scalar("SELECT count(*) FROM migrated_later") == 5

        await eventually(all_in, timeout=30)
    assert sum((await topic_end_offsets(infra.topic(dlq))).values()) == 0, "dead-lettered"
    assert metric_total(runner.metrics, "events_dead_lettered") == 0
