"""Two runners of one group on the KIP-848 consumer protocol (``kafka_consumer_protocol=consumer``)
on the real broker: a member joining or leaving moves only the partitions that change hands, the
first member goes on applying the rest meanwhile, topics keyed alike keep the same partition
numbers on one member, and every record is applied exactly once, with no redelivery at all (a
revoked partition's batch is applied and committed before the partition moves; the partitions kept
that shared a slot with it are rewound to their first unapplied record). About 35 s."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from aiokafka import TopicPartition

from recall_shared import events as ev
from recall_shared.consumer import Record
from recall_shared.testing import eventually
from recall_shared.topics import ALERTS, CUSTOMERS, ORDERS, dead_letter_topic

pytestmark = pytest.mark.integration

PARTITIONS = 6  # ALERTS and ORDERS: both keyed by customer id, six partitions each


class Observed:
    """What one runner did, with monotonic timestamps."""

    def __init__(
        self, infra, producer, handler=None, topics=(ALERTS, ORDERS), **settings: object
    ) -> None:
        self.applied: list[tuple[float, TopicPartition]] = []
        self.revoked: list[tuple[float, float, set[TopicPartition]]] = []  # (began, ended, parts)
        self.runner = runner = infra.runner(
            {ev.AlertClosed: handler or infra.inserting_handler},
            list(topics),
            producer=producer,
            on_applied=self.on_applied,
            kafka_consumer_protocol="consumer",
            **({"consumer_batch_max_records": 10} | settings),
        )
        release = runner.release

        async def spy(partitions: set[TopicPartition]) -> None:
            began = time.monotonic()
            await release(partitions)
            self.revoked.append((began, time.monotonic(), set(partitions)))

        runner.release = spy
        self.assigned: list[tuple[float, set[TopicPartition]]] = []
        log_positions = runner.log_starting_positions

        def on_assigned(partitions: set[TopicPartition]) -> None:  # the listener calls it
            self.assigned.append((time.monotonic(), set(partitions)))
            log_positions(partitions)

        runner.log_starting_positions = on_assigned

    async def on_applied(self, rec: Record) -> None:
        self.applied.append((time.monotonic(), TopicPartition(rec.topic, rec.partition)))

    def assignment(self) -> set[TopicPartition]:
        consumer = self.runner.consumer
        return set(consumer.assignment()) if consumer is not None else set()


@contextlib.asynccontextmanager
async def producing(infra, producer, sent: list[str]) -> AsyncIterator[None]:
    """Publish an AlertClosed every 15 ms, alternating between the two topics, for the block."""

    stop = asyncio.Event()

    async def loop() -> None:
        i = 0
        while not stop.is_set():  # never cancelled mid-send: a record sent is a record counted
            spec = ALERTS if i % 2 else ORDERS
            event = ev.AlertClosed(
                alert_id=f"al-{i}",
                customer_id=f"cust-{i % 40}",
                recall_id="rc-1",
                closed_at=datetime.now(UTC),
            )
            sent.append((await infra.send(producer, spec, event))[0])
            i += 1
            await asyncio.sleep(0.015)

    task = asyncio.create_task(loop())
    try:
        yield
    finally:
        stop.set()
        await task


def partition_numbers(parts: set[TopicPartition], topic: str) -> set[int]:
    return {tp.partition for tp in parts if tp.topic == topic}


async def test_a_join_and_a_leave_move_only_some_partitions_and_apply_each_record_once(
    infra, run_task, metric_total
) -> None:
    await infra.create_topics(ALERTS, ORDERS, dead_letter_topic("recall-intake"))
    alerts, orders = infra.topic(ALERTS), infra.topic(ORDERS)
    everything = {TopicPartition(t, p) for t in (alerts, orders) for p in range(PARTITIONS)}
    producer = await infra.producer()
    sent: list[str] = []

    first, second = Observed(infra, producer), Observed(infra, producer)

    async def owns(observed: Observed, wanted: set[TopicPartition]) -> bool:
        return observed.assignment() == wanted

    async with run_task(first.runner):
        async with producing(infra, producer, sent):
            await eventually(lambda: owns(first, everything), timeout=20)
            await eventually(lambda: _some(first.applied), timeout=20)

            # A second member joins: the first gives up only the partitions that move.
            joined_at = time.monotonic()
            async with run_task(second.runner):

                async def split() -> bool:
                    a, b = first.assignment(), second.assignment()
                    return bool(a and b) and not a & b and a | b == everything

                await eventually(split, timeout=30)
                settled_at = time.monotonic()
                kept, moved = first.assignment(), second.assignment()
                # The first's revocations during the join: only what moved, never all it had.
                during_join = [parts for began, _, parts in first.revoked if began >= joined_at]
                assert during_join, "the first member saw no revocation"
                assert set().union(*during_join) == moved
                # Topics keyed alike keep the same partition numbers on one member.
                for owned in (kept, moved):
                    assert partition_numbers(owned, alerts) == partition_numbers(owned, orders)
                # The first went on applying what it kept while the partitions moved: those were
                # neither revoked nor assigned again, and their records kept being applied.
                revoke_began = min(began for began, _, _ in first.revoked if began >= joined_at)
                again = [parts & kept for t, parts in first.assigned if t >= joined_at]
                assert not any(again), f"kept partitions were assigned again: {again}"
                await eventually(lambda: _some(second.applied), timeout=20)

                async def kept_applying() -> bool:
                    return any(t >= revoke_began and tp in kept for t, tp in first.applied)

                await eventually(kept_applying, timeout=20)
                left_at = time.monotonic()
            # The second left (closed): its partitions come back to the first.
            await eventually(lambda: owns(first, everything), timeout=30)
            back_at = time.monotonic()
            await asyncio.sleep(0.5)
        # Every record applied exactly once across the join and the leave, none even redelivered.
        await eventually(lambda: _applied(infra, len(sent)), timeout=30)

        async def caught_up() -> bool:  # the lag gauge works on this protocol too
            lags = _lags(first)
            assert len(lags) == len(everything) and not any(lags.values()), lags
            return True

        await eventually(caught_up, timeout=10)
    assert Counter(await infra.applied_ids()) == {i: 1 for i in sent}
    duplicates = sum(metric_total(o.runner.metrics, "events_duplicate") for o in (first, second))
    assert duplicates == 0
    print(
        f"join: partitions split {settled_at - joined_at:.1f}s after the second started; "
        f"leave: all back {back_at - left_at:.1f}s after it stopped; "
        f"{len(sent)} records, {len(first.applied)} + {len(second.applied)} applied"
    )


async def test_a_moving_partition_s_batch_in_hand_is_applied_and_committed_before_it_moves(
    infra, run_task, metric_total, group_offsets, topic_end_offsets
) -> None:
    # Customers (3 partitions) beside alerts and orders (6): three slots, each holding partitions
    # of which some move and some stay, so a revocation also rewinds (seeks) the partitions kept.
    topics = (ALERTS, ORDERS, CUSTOMERS)
    await infra.create_topics(*topics, dead_letter_topic("recall-intake"))
    producer = await infra.producer()
    sent = [
        (
            await infra.send(
                producer,
                topics[i % 3],
                ev.AlertClosed(
                    alert_id=f"al-{i}",
                    customer_id=f"cust-{i % 60}",
                    recall_id="rc-1",
                    closed_at=datetime.now(UTC),
                ),
            )
        )[0]
        for i in range(540)
    ]

    async def slow(session, event, env) -> None:
        await asyncio.sleep(0.05)  # a backlog on every slot: each has a batch in hand
        await infra.inserting_handler(session, event, env)

    # Batches of about a second: at the revocation each slot is in the middle of one.
    settings = {"consumer_batch_max_records": 20, "consumer_max_parallel_partitions": 6}
    first = Observed(infra, producer, slow, topics, **settings)
    second = Observed(infra, producer, slow, topics, **settings)
    async with run_task(first.runner):
        await eventually(lambda: _some(first.applied), timeout=20)
        joined_at = time.monotonic()
        async with run_task(second.runner):
            await eventually(lambda: _some(first.revoked), timeout=30)
            began, ended, moved = first.revoked[0]
            assert began >= joined_at and moved
            # Inside the revoke callback the first finished the batches in hand of the slots that
            # held a moving partition (a slot's batch may be of its kept partitions only).
            halted = {tp.partition % first.runner.slots for tp in moved}
            finished = [
                tp
                for t, tp in first.applied
                if began <= t <= ended and tp.partition % first.runner.slots in halted
            ]
            assert finished, "no batch in hand was finished in the callback"
            await eventually(lambda: _applied(infra, len(sent)), timeout=40)
    assert Counter(await infra.applied_ids()) == {i: 1 for i in sent}
    assert sum(metric_total(o.runner.metrics, "events_duplicate") for o in (first, second)) == 0
    committed = await group_offsets(first.runner.group)
    for topic in map(infra.topic, topics):
        for partition, end in (await topic_end_offsets(topic)).items():
            assert committed[(topic, partition)] == end
    print(
        f"revoke of {len(moved)} partitions took {ended - began:.2f}s "
        f"({len(finished)} records of them applied meanwhile)"
    )


def _lags(observed: Observed) -> dict[tuple[str, str], float]:
    return {
        (sample.labels["topic"], sample.labels["partition"]): sample.value
        for family in observed.runner.metrics.registry.collect()
        if family.name == "consumer_lag"
        for sample in family.samples
    }


async def _some(items: list) -> bool:
    return bool(items)


async def _applied(infra, n: int) -> bool:
    return await infra.applied_count() >= n
