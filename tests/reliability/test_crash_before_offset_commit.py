"""A service killed after its batch committed and before the Kafka offset did: the batch is
redelivered and the inbox drops every repeat, so no effect is applied twice and none is lost."""

from __future__ import annotations

import asyncio
import signal
import time

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from system import SERVICE_NAMES, System

from recall_shared.testing import eventually

pytestmark = [pytest.mark.reliability, pytest.mark.integration]

CUSTOMERS = 2000
FROZEN_S = 2.0


async def committed_offsets_once_settled(
    system: System, steady_reads: int = 4, interval_s: float = 1.0, within_s: float = 60.0
) -> int:
    """customer-api's committed offsets (as :func:`committed_alert_offsets`) once the same sum was
    read ``steady_reads`` times in a row, ``interval_s`` apart."""
    deadline = time.monotonic() + within_s
    reads = [await committed_alert_offsets(system)]
    while len(reads) < steady_reads or len(set(reads[-steady_reads:])) > 1:
        if time.monotonic() > deadline:
            raise AssertionError(f"committed offsets kept changing: {reads}")
        await asyncio.sleep(interval_s)
        reads.append(await committed_alert_offsets(system))
    return reads[-1]


async def committed_alert_offsets(system: System) -> int:
    """customer-api's committed offsets on alerts.v1, summed over the partitions."""
    admin = AIOKafkaAdminClient(bootstrap_servers=system.kafka.bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(system.prefix + "customer-api")
    finally:
        await admin.close()
    topic = system.prefix + "alerts.v1"
    return sum(meta.offset for tp, meta in offsets.items() if tp.topic == topic and meta.offset > 0)


async def test_a_crash_between_batch_commit_and_offset_commit_applies_nothing_twice(
    system: System,
) -> None:
    """Orders of 2,000 customers are loaded, then their recall is published: the matcher raises
    2,000 alerts at once and customer-api ingests them in batches. As soon as its first batch is in,
    the broker is frozen (SIGSTOP): the batches in hand still commit to PostgreSQL, but their offset
    commits hang. customer-api is then SIGKILLed, the frozen broker killed (so no commit in its
    socket buffers is taken later) and started again, and customer-api started again.

    Freezing the broker holds the window between the two commits open, so the kill lands in it
    every time (random kills during ingest only hit it now and then); the test checks it did: fewer
    offsets were committed than alerts applied. After the restart those alerts are redelivered and
    every one must be dropped by the inbox (``events_duplicate_total`` counts them), and
    every service must end with each effect once.

    Old behaviour: the per-record runner deduplicated redeliveries the same way; this guards the
    batch runner's order of commits (one that committed offsets before its transaction would lose
    the killed batches) and its one-statement inbox claim for a batch (one that let a redelivered
    batch through would apply it twice, and count no duplicates).
    """
    cohort = system.cohort(CUSTOMERS)
    letters_before = await system.dead_letters()
    await system.contacts_known(cohort)
    await system.publish(cohort.orders())

    async def orders_indexed() -> bool:
        n = await system.scalar(
            "purchase-matcher",
            "SELECT count(*) FROM purchase_lines WHERE product_id = $1",
            cohort.product_id,
        )
        return n == CUSTOMERS

    await eventually(orders_indexed, timeout=90, interval=0.5)

    async def customer_api_caught_up() -> int:
        await system.scalar("customer-api", "SELECT 1")
        lag = await system.metric("customer-api", "consumer_lag", topic=system.prefix + "alerts.v1")
        return 1 if lag == 0 else 0

    await eventually(customer_api_caught_up, timeout=60)
    # Caught up means fetched: the last batches' offset commits may still be on their way.
    offsets_before = await committed_offsets_once_settled(system)

    recall_id = await system.publish_recall(cohort)

    async def applied() -> int:
        return await system.scalar(
            "customer-api", "SELECT count(*) FROM alerts WHERE recall_id = $1", recall_id
        )

    await eventually(applied, timeout=60, interval=0.02)
    system.kafka.freeze()
    try:
        await asyncio.sleep(FROZEN_S)  # the batches in hand commit; their offset commits hang
        system.stack.processes["customer-api"].send_signal(signal.SIGKILL)
        system.stack.processes["customer-api"].wait()
    finally:
        # Killed while frozen: the offset commits that reached its socket buffers die with it (a
        # thawed broker took them seconds later, and then sometimes every one).
        system.kafka.kill()
        await asyncio.to_thread(system.kafka.start)
    # Nobody commits for the group now: what it has committed is final once it stops changing.
    committed_at_kill = await committed_offsets_once_settled(system)
    applied_at_kill = await applied()
    uncommitted = applied_at_kill - (committed_at_kill - offsets_before)
    assert 0 < applied_at_kill < CUSTOMERS, applied_at_kill
    assert uncommitted > 0, "the kill did not land between a batch commit and its offset commit"

    started = time.monotonic()
    await asyncio.to_thread(system.stack.restart_service, "customer-api")
    got = await system.applied_once(cohort, within=150)
    assert got["customer-api alerts"] == CUSTOMERS

    # Every alert being in does not mean every redelivery was read: a partition whose alerts were
    # all applied before the kill holds only repeats, and may still be on its way. Its offsets are
    # committed once it is through.
    async def all_committed() -> bool:
        return await committed_alert_offsets(system) - offsets_before >= CUSTOMERS

    await eventually(all_committed, timeout=60, interval=0.5)

    duplicates = await system.metric(
        "customer-api", "events_duplicate_total", topic=system.prefix + "alerts.v1"
    )
    # The restarted service dropped repeats through its inbox, and never more than the alerts
    # applied but not committed at the kill (more would be repeats of committed records). Not
    # asserted equal: in one run the restarted service met fewer (359 of 974), though no
    # commit can land late now; perhaps the restarted broker's coordinator, still loading the
    # group, answered the offsets of some partitions only (issue 12's note).
    assert 0 < duplicates <= uncommitted, (
        f"{uncommitted} alerts were applied but not committed at the kill; the restarted "
        f"customer-api dropped {duplicates} redeliveries ({time.monotonic() - started:.0f}s)"
    )
    letters = await system.new_dead_letters(letters_before)
    assert {name: len(recs) for name, recs in letters.items()} == dict.fromkeys(SERVICE_NAMES, 0)
    await system.all_ready()
