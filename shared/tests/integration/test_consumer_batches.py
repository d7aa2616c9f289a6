"""The batched, partition-parallel runner on real Kafka and PostgreSQL: batch handlers get runs,
partitions don't wait for each other, rebalances lose nothing, and redrive is per runner."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.orm import registry

from recall_shared import envelope
from recall_shared import events as ev
from recall_shared.handlers import PermanentError, batched
from recall_shared.kafka import murmur2
from recall_shared.sample_events import alert_closed, alert_withdrawn
from recall_shared.testing import eventually, read_topic
from recall_shared.topics import ALERTS, dead_letter_topic

pytestmark = pytest.mark.integration

DLQ = dead_letter_topic("recall-intake")


@pytest.fixture
async def topics(infra) -> None:
    await infra.create_topics(ALERTS, DLQ)


def keys_on_distinct_partitions(n: int, partitions: int) -> list[str]:
    found: dict[int, str] = {}
    i = 0
    while len(found) < n:
        key = f"cust-{i}"
        found.setdefault((murmur2(key.encode()) & 0x7FFFFFFF) % partitions, key)
        i += 1
    return list(found.values())


async def test_a_batch_handler_gets_runs_of_consecutive_deliveries_in_order(
    infra, topics, run_task, metric_total
) -> None:
    producer = await infra.producer()
    calls: list[int] = []

    async def insert_many(session, deliveries) -> None:
        calls.append(len(deliveries))
        for d in deliveries:
            await infra.inserting_handler(session, d.event, d.envelope)

    closed = batched(insert_many)
    sent: list[str] = []
    # One key, one partition: 40 closes, one withdrawal handled one by one, 40 closes.
    for i in range(81):
        event = alert_withdrawn("cust-1", 1) if i == 40 else alert_closed(f"al-{i}", "cust-1")
        sent.append((await infra.send(producer, ALERTS, event))[0])
    runner = infra.runner(
        {ev.AlertClosed: closed, ev.AlertWithdrawn: infra.inserting_handler},
        [ALERTS],
        producer=producer,
    )
    async with run_task(runner):
        await eventually(lambda: _count(infra, 81), timeout=25)
    assert await infra.applied_ids() == sent  # partition order kept across the runs
    assert sum(calls) == 80 and max(calls) > 1  # runs, not one call per delivery
    assert metric_total(runner.metrics, "events_consumed") == 81


async def test_a_slow_partition_does_not_hold_the_others(infra, topics, run_task) -> None:
    producer = await infra.producer()
    partitions = len(await producer.partitions_for(infra.topic(ALERTS)))
    slow_key, fast_key = keys_on_distinct_partitions(2, partitions)
    release = asyncio.Event()
    applied_at: dict[str, float] = {}

    async def handler(session, event, env) -> None:
        if event.customer_id == slow_key:
            await release.wait()
        await infra.inserting_handler(session, event, env)
        applied_at[event.alert_id] = time.monotonic()

    await infra.send(producer, ALERTS, alert_closed("slow-1", slow_key))
    fast = [
        (await infra.send(producer, ALERTS, alert_closed(f"fast-{i}", fast_key)))[0]
        for i in range(20)
    ]
    runner = infra.runner({ev.AlertClosed: handler}, [ALERTS], producer=producer)
    async with run_task(runner):
        await eventually(lambda: _count(infra, 20), timeout=25)
        assert sorted(await infra.applied_ids()) == sorted(fast)  # while the slow one still waits
        release.set()
        await eventually(lambda: _count(infra, 21), timeout=25)


async def test_a_second_member_joining_mid_stream_loses_and_doubles_nothing(
    infra, topics, run_task, metric_total
) -> None:
    producer = await infra.producer()
    ids = [
        (await infra.send(producer, ALERTS, alert_closed(f"al-{i}", f"cust-{i % 16}")))[0]
        for i in range(400)
    ]

    async def slowish(session, event, env) -> None:
        await asyncio.sleep(0.005)
        await infra.inserting_handler(session, event, env)

    first = infra.runner(
        {ev.AlertClosed: slowish}, [ALERTS], producer=producer, consumer_batch_max_records=20
    )
    second = infra.runner(
        {ev.AlertClosed: slowish}, [ALERTS], producer=producer, consumer_batch_max_records=20
    )
    async with run_task(first):
        await eventually(lambda: _count(infra, 20), timeout=25)
        async with run_task(second):
            await eventually(lambda: _count(infra, 400), timeout=60)
    assert Counter(await infra.applied_ids()) == {i: 1 for i in ids}
    consumed = metric_total(first.metrics, "events_consumed") + metric_total(
        second.metrics, "events_consumed"
    )
    assert consumed == 400  # a partition moved mid-batch is deduplicated, never applied twice


async def test_redrive_is_per_runner_stops_at_the_end_and_counts_true(
    infra, topics, run_task, metric_total
) -> None:
    producer = await infra.producer()
    topic = infra.topic(ALERTS)
    key = b"cust-1"
    fixed = False

    async def handler(session, event, env) -> None:
        if event.alert_id == "reject":
            raise PermanentError("never acceptable")
        if event.alert_id == "broken" and not fixed:
            raise RuntimeError("dependency down")
        await infra.inserting_handler(session, event, env)

    await producer.send_and_wait(topic, value=b"not an event", key=key)  # undecodable
    bad = envelope.wrap(alert_closed("al-invalid"), source="/tests")
    body = orjson.loads(bad.data)
    body["closed_at"] = "not a time"
    await producer.send_and_wait(topic, value=orjson.dumps(body), key=key, headers=bad.headers())
    await infra.send(producer, ALERTS, alert_closed("reject"))
    broken_id, _ = await infra.send(producer, ALERTS, alert_closed("broken"))

    # Two runners of one service (two groups) read the same topic and share its dead-letter topic.
    a = infra.runner(
        {ev.AlertClosed: handler}, [ALERTS], producer=producer, consumer_max_attempts=2
    )
    b = infra.runner(
        {ev.AlertClosed: handler},
        [ALERTS],
        producer=producer,
        group_suffix=".b",
        consumer_max_attempts=2,
    )
    async with run_task(a), run_task(b):
        await eventually(lambda: _dead_lettered(a, b, metric_total, 8), timeout=30)
    assert await _letters(infra) == 8

    fixed = True
    # a redrives its own four: the undecodable, invalid and rejected fail again (written back once
    # each, attempts raised), the broken one is applied; b's four are left alone.
    assert await asyncio.wait_for(a.redrive_dead_letters(), timeout=30) == {
        "dead_lettered": 3,
        "applied": 1,
        "other_runner": 4,
    }
    assert await _letters(infra) == 11
    assert await infra.applied_ids() == [broken_id]
    again = [r for _, _, r in await read_topic(infra.topic(DLQ), count=11, timeout=10)][8:]
    headers = [{k: v.decode() for k, v in r.headers if k.startswith("dlq_")} for r in again]
    assert sorted(h["dlq_reason"] for h in headers) == ["invalid", "rejected", "undecodable"]
    assert {h["dlq_consumer_group"] for h in headers} == {a.group}
    assert {h["dlq_attempts"] for h in headers} == {"2"}  # one more than the first letter's
    assert {h["dlq_original_topic"] for h in headers} == {topic}

    # Again: only a's three new letters; then b redrives its four, skipping a's seven.
    assert await asyncio.wait_for(a.redrive_dead_letters(), timeout=30) == {"dead_lettered": 3}
    assert await asyncio.wait_for(b.redrive_dead_letters(), timeout=30) == {
        "dead_lettered": 3,
        "applied": 1,
        "other_runner": 10,
    }
    assert await _letters(infra) == 17
    assert Counter(await infra.applied_ids()) == {broken_id: 2}  # once per group (two read models)


async def _count(infra, n: int) -> bool:
    return await infra.applied_count() >= n


async def _dead_lettered(a, b, metric_total, n: int) -> bool:
    return (
        metric_total(a.metrics, "events_dead_lettered")
        + metric_total(b.metrics, "events_dead_lettered")
        >= n
    )


async def _letters(infra) -> int:
    return len(await read_topic(infra.topic(DLQ), count=10**6, timeout=2))


async def test_a_handler_never_reads_a_copy_another_handler_made_stale(
    infra, topics, run_task
) -> None:
    """One batch, one session: a handler loads a row as an ORM object, the next changes that row
    with plain SQL, the third loads it again and must see the change, not the session's copy."""

    class Row:
        subject: str

    registry().map_imperatively(Row, infra.applied)
    async with infra.engine.begin() as conn:
        await conn.execute(
            text("INSERT INTO applied (id, event_id, subject) VALUES (1, 'x', 'old')")
        )
    producer = await infra.producer()
    seen: list[str] = []

    held: list[Row] = []  # the session's identity map holds objects weakly: keep them alive

    async def load(session, event, env) -> None:
        held.append(await session.get(Row, 1))
        seen.append(held[-1].subject)

    async def change(session, event, env) -> None:
        await session.execute(text("UPDATE applied SET subject = 'new' WHERE id = 1"))

    # One key, one partition, one batch: load, change, load.
    await infra.send(producer, ALERTS, alert_closed("al-1", "cust-1"))
    await infra.send(producer, ALERTS, alert_withdrawn("cust-1", 1))
    await infra.send(producer, ALERTS, alert_closed("al-2", "cust-1"))
    runner = infra.runner(
        {ev.AlertClosed: load, ev.AlertWithdrawn: change}, [ALERTS], producer=producer
    )
    async with run_task(runner):
        await eventually(lambda: _seen(seen, 2), timeout=25)
    assert seen == ["old", "new"]


async def _seen(seen: list[str], n: int) -> bool:
    return len(seen) >= n


async def test_a_handlers_unflushed_changes_survive_the_next_handler(
    infra, topics, run_task
) -> None:
    """A handler that changes an ORM object and leaves the flush to the commit keeps its change
    when the runner refreshes the session for the next handler of the batch."""

    class Row:
        subject: str

    registry().map_imperatively(Row, infra.applied)
    async with infra.engine.begin() as conn:
        await conn.execute(
            text("INSERT INTO applied (id, event_id, subject) VALUES (1, 'x', 'old')")
        )
    producer = await infra.producer()
    done: list[str] = []

    async def change(session, event, env) -> None:
        (await session.get(Row, 1)).subject = "changed"  # flushed by the commit, not here

    async def other(session, event, env) -> None:
        done.append(env.id)

    await infra.send(producer, ALERTS, alert_closed("al-1", "cust-1"))
    await infra.send(producer, ALERTS, alert_withdrawn("cust-1", 1))
    runner = infra.runner(
        {ev.AlertClosed: change, ev.AlertWithdrawn: other}, [ALERTS], producer=producer
    )
    async with run_task(runner):
        await eventually(lambda: _seen(done, 1), timeout=25)
        await asyncio.sleep(0.3)
    assert await infra.scalar("SELECT subject FROM applied WHERE id = 1") == "changed"
