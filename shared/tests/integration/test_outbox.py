"""Transactional outbox and relay against the real PostgreSQL and Kafka."""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict

import pytest

from recall_shared import events as ev
from recall_shared.metrics import Metrics
from recall_shared.outbox import Outbox, OutboxRelay
from recall_shared.sample_events import alert_withdrawn
from recall_shared.testing import envelope_of, eventually, read_topic
from recall_shared.topics import ALERTS

pytestmark = pytest.mark.integration

KEYS = ("cust-a", "cust-b", "cust-c")


def _outbox(infra) -> Outbox:
    return Outbox(source="/tests", service="recall-intake", topic_prefix=infra.prefix)


async def _outbox_rows(infra) -> int:
    return await infra.scalar("SELECT count(*) FROM outbox")


def _check_order_and_uniqueness(records, expected_ids: set[str]) -> None:
    """Per key, sequence numbers ascend with no gaps from 0; every expected ce_id exactly once."""
    ids = Counter(env.id for _, env, _ in records)
    assert set(ids) == expected_ids
    assert all(n == 1 for n in ids.values()), [i for i, n in ids.items() if n > 1]
    per_key: dict[bytes, list[int]] = defaultdict(list)
    partition_of: dict[bytes, set[int]] = defaultdict(set)
    for key, env, raw in records:
        event = ev.AlertWithdrawn.model_validate_json(env.data)
        assert key == event.customer_id.encode()
        per_key[key].append(event.alert_version)
        partition_of[key].add(raw.partition)
    for key, seqs in per_key.items():
        assert seqs == list(range(len(seqs))), f"{key!r} out of order: {seqs}"
        assert len(partition_of[key]) == 1


async def test_rolled_back_rows_are_never_published_committed_ones_are_in_order(
    infra, topic_end_offsets, run_task
) -> None:
    await infra.create_topics(ALERTS)
    outbox = _outbox(infra)
    topic = infra.topic(ALERTS)

    # A transaction that rolls back takes its events with it.
    class Abort(Exception):
        pass

    with pytest.raises(Abort):
        async with infra.session_factory() as session, session.begin():
            rolled_back = await outbox.add_many(
                session, [(alert_withdrawn("cust-z", i), None) for i in range(5)]
            )
            raise Abort
    assert await _outbox_rows(infra) == 0

    # 50 events over 3 keys, committed in several transactions (as several requests would).
    committed: list[str] = []
    seq = Counter[str]()
    for batch in range(5):
        async with infra.session_factory() as session, session.begin():
            items = []
            for i in range(10):
                key = KEYS[(batch * 10 + i) % 3]
                items.append((alert_withdrawn(key, seq[key]), None))
                seq[key] += 1
            committed += await outbox.add_many(session, items, correlation_id="corr-outbox")
    assert await _outbox_rows(infra) == 50

    producer = await infra.producer()
    metrics = Metrics("recall-intake")
    relay = infra.relay(producer, metrics=metrics)
    async with run_task(relay):
        await eventually(lambda: _empty(infra), timeout=20)
        assert relay.published_total == 50

    records = await read_topic(topic, count=50, timeout=20)
    assert len(records) == 50
    _check_order_and_uniqueness(records, set(committed))
    envs = [envelope_of(r) for r in records]
    assert not set(rolled_back) & {env.id for env in envs}
    assert all(
        env.correlation_id == "corr-outbox" and env.type == "alert.withdrawn.v1" for env in envs
    )
    # Nothing else on the topic: exactly the 50 committed events.
    assert sum((await topic_end_offsets(topic)).values()) == 50
    assert f'events_produced_total{{topic="{topic}"}} 50.0' in metrics.render().decode()


async def _empty(infra) -> bool:
    return await _outbox_rows(infra) == 0


async def test_same_event_id_twice_is_one_row(infra) -> None:
    outbox = _outbox(infra)
    async with infra.session_factory() as session, session.begin():
        await outbox.add(session, alert_withdrawn("cust-a", 0), event_id="deterministic-1")
    async with infra.session_factory() as session, session.begin():
        eid = await outbox.add(session, alert_withdrawn("cust-a", 1), event_id="deterministic-1")
    assert eid == "deterministic-1"
    assert await _outbox_rows(infra) == 1


async def test_relay_wakes_on_notify_not_on_the_slow_poll(infra, run_task) -> None:
    await infra.create_topics(ALERTS)
    outbox = _outbox(infra)
    producer = await infra.producer()
    relay = infra.relay(producer, fallback_poll_s=30)
    async with infra.session_factory() as session, session.begin():
        await outbox.add(session, alert_withdrawn("cust-a", 0))
    async with run_task(relay):
        # The backlog at start is published at once; after that the relay is listening.
        await eventually(lambda: _empty(infra), timeout=10, interval=0.05)
        await asyncio.sleep(0.3)
        started = time.monotonic()
        async with infra.session_factory() as session, session.begin():
            eid = await outbox.add(session, alert_withdrawn("cust-a", 1))
        await eventually(lambda: _empty(infra), timeout=5, interval=0.02)
        elapsed = time.monotonic() - started
        assert relay.published_total == 2
    assert elapsed < 2.0, f"relay took {elapsed:.2f}s: woke by poll, not NOTIFY"
    records = await read_topic(infra.topic(ALERTS), count=2, timeout=10)
    assert eid in {envelope_of(r).id for r in records}


class RelayCrash(BaseException):
    """Stands for the process dying: not an Exception, so the relay's own retry loop does not catch
    it."""


class _CrashOnDelete:
    """Delegates to the relay's connection but dies when the relay tries to delete published
    rows."""

    def __init__(self, conn) -> None:
        self._conn = conn

    def __getattr__(self, name: str):
        return getattr(self._conn, name)

    async def execute(self, query: str, *args):
        if query.lstrip().upper().startswith("DELETE"):
            raise RelayCrash("killed after publishing, before deleting")
        return await self._conn.execute(query, *args)


class CrashingRelay(OutboxRelay):
    async def publish_pending(self, conn) -> int:
        return await super().publish_pending(_CrashOnDelete(conn))


async def test_relay_crash_after_publish_republishes_with_same_ids_and_inbox_dedupes(
    infra, topic_end_offsets, run_task, metric_total
) -> None:
    from recall_shared.topics import dead_letter_topic

    await infra.create_topics(ALERTS, dead_letter_topic("recall-intake"))
    outbox = _outbox(infra)
    topic = infra.topic(ALERTS)
    seq = Counter[str]()
    async with infra.session_factory() as session, session.begin():
        items = []
        for i in range(12):
            key = KEYS[i % 3]
            items.append((alert_withdrawn(key, seq[key]), None))
            seq[key] += 1
        ids = await outbox.add_many(session, items)

    producer = await infra.producer()
    crashing = infra.relay(producer, cls=CrashingRelay)
    with pytest.raises(RelayCrash):
        await asyncio.wait_for(crashing.run(), timeout=20)
    # Published and acknowledged, but the rows survived the crash.
    assert sum((await topic_end_offsets(topic)).values()) == 12
    assert await _outbox_rows(infra) == 12

    # A new relay (the restarted process) publishes them again, with the same ids, and empties the
    # outbox.
    relay = infra.relay(producer)
    async with run_task(relay):
        await eventually(lambda: _empty(infra), timeout=20)
    assert sum((await topic_end_offsets(topic)).values()) == 24
    records = await read_topic(topic, count=24, timeout=20)
    assert Counter(envelope_of(r).id for r in records) == {i: 2 for i in ids}

    # A consumer with the inbox applies each event exactly once.
    runner = infra.runner({ev.AlertWithdrawn: infra.inserting_handler}, [ALERTS], producer=producer)
    async with run_task(runner):
        await eventually(lambda: _consumed(runner, metric_total, 24), timeout=25)
    assert sorted(await infra.applied_ids()) == sorted(ids)
    assert metric_total(runner.metrics, "events_duplicate") == 12


async def _consumed(runner, metric_total, n: int) -> bool:
    m = runner.metrics
    return metric_total(m, "events_consumed") + metric_total(m, "events_duplicate") >= n


async def test_rows_written_while_no_relay_runs_survive_a_cancelled_relay(infra, run_task) -> None:
    await infra.create_topics(ALERTS)
    outbox = _outbox(infra)
    producer = await infra.producer()
    # A relay that is cancelled (process stopped) while waiting for leadership publishes nothing.
    blocker = await _hold_relay_lock(infra)
    try:
        waiting = infra.relay(producer)
        task = asyncio.create_task(waiting.run())
        async with infra.session_factory() as session, session.begin():
            ids = await outbox.add_many(
                session, [(alert_withdrawn("cust-a", i), None) for i in range(10)]
            )
        await asyncio.sleep(0.5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert waiting.published_total == 0
        assert await _outbox_rows(infra) == 10
    finally:
        await blocker.close()
    # The next relay publishes everything written before it started.
    relay = infra.relay(producer)
    async with run_task(relay):
        await eventually(lambda: _empty(infra), timeout=20)
    records = await read_topic(infra.topic(ALERTS), count=10, timeout=20)
    assert [envelope_of(r).id for r in records] == ids  # one key, one partition: order kept


async def _hold_relay_lock(infra):
    """Take the relay's advisory lock from another connection (as another replica would)."""
    import asyncpg

    probe = OutboxRelay(database_url=infra.database_url, producer=None, service="recall-intake")
    conn = await asyncpg.connect(probe.dsn)
    assert await conn.fetchval("SELECT pg_try_advisory_lock($1)", probe._lock_key)
    return conn


async def test_two_relays_only_one_publishes_and_the_other_takes_over(
    infra, topic_end_offsets, run_task
) -> None:
    await infra.create_topics(ALERTS)
    outbox = _outbox(infra)
    topic = infra.topic(ALERTS)
    relay_a = infra.relay(await infra.producer(), fallback_poll_s=0.3)
    relay_b = infra.relay(await infra.producer(), fallback_poll_s=0.3)
    seq = Counter[str]()
    ids: list[str] = []

    async def write(n: int) -> None:
        for i in range(n):
            async with infra.session_factory() as session, session.begin():
                key = KEYS[i % 3]
                ids.extend(await outbox.add_many(session, [(alert_withdrawn(key, seq[key]), None)]))
                seq[key] += 1

    tasks = {
        relay_a: asyncio.create_task(relay_a.run()),
        relay_b: asyncio.create_task(relay_b.run()),
    }
    try:
        await write(30)
        await eventually(lambda: _empty(infra), timeout=20)
        await eventually(lambda: _published(relay_a, relay_b, 30), timeout=10)
        assert sorted([relay_a.published_total, relay_b.published_total]) == [0, 30]
        leader, follower = (relay_a, relay_b) if relay_a.published_total else (relay_b, relay_a)
        # The leader stops (its connection, and with it the lock, goes); the follower takes over.
        leader.stop()
        await asyncio.wait_for(tasks[leader], timeout=10)
        await write(15)
        await eventually(lambda: _empty(infra), timeout=20)
        assert follower.published_total == 15
        assert leader.published_total == 30
    finally:
        for relay in tasks:
            relay.stop()
        await asyncio.wait_for(asyncio.gather(*tasks.values(), return_exceptions=True), timeout=10)

    records = await read_topic(topic, count=45, timeout=20)
    assert sum((await topic_end_offsets(topic)).values()) == 45
    _check_order_and_uniqueness(records, set(ids))


async def _published(a: OutboxRelay, b: OutboxRelay, n: int) -> bool:
    return a.published_total + b.published_total >= n
