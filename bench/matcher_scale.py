"""Benchmark: a recall reaching many order lines, recall.published.v1 -> last alert on alerts.v1.

    .venv/bin/python bench/matcher_scale.py --index-lines 1000000 --matching-lines 100000
    # the issue's size:
    .venv/bin/python bench/matcher_scale.py --index-lines 10000000 --matching-lines 1000000

The purchase index is bulk-loaded (COPY) into a fresh database; the matcher runs as its own process
(``python -m purchase_matcher serve``) on a fresh topic prefix, and the recall is published once its
consumer has joined its group. Measured in the same run:
- ``read``: a bare server-side cursor reading the matching rows in customer order (PostgreSQL's
  share);
- ``produce``: the same records as below, encoded beforehand, produced with the batch API (Kafka's
  share);
- ``bare``: cursor -> one alert.raised.v1 record per customer, the same bytes the matcher sends
  (JSON body, CloudEvents headers, customer key on its murmur2 partition), encoded by hand with
  orjson -> aiokafka batch produce (create_batch/send_batch), to the last acknowledgement: the limit
  a hand-written pipeline reaches;
- ``system``: recall published -> the last alert on alerts.v1 (end offsets polled every 20 ms; the
  records are then read back and checked: one alert.raised.v1 per affected customer), through the
  matcher's consumer, reconcile and producer; and the matcher process's peak RSS (VmHWM).
``--rounds`` (default 2) repeats both sides, each round with a new recall of the same lines,
alternating which side goes first (even rounds the system, odd rounds the limits), so neither always
meets the warmest cache; the figures are the rounds' medians, each round listed too. Prints one JSON
line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    CoordinatorLoadInProgressError,
    GroupCoordinatorNotAvailableError,
    NotCoordinatorForGroupError,
)
from aiokafka.partitioner import murmur2

from purchase_matcher.cli import MIGRATIONS
from purchase_matcher.domain import ALERT_NAMESPACE as NAMESPACE
from recall_shared import events as ev
from recall_shared.envelope import wrap
from recall_shared.kafka import create_producer, create_topics
from recall_shared.migrations import upgrade
from recall_shared.settings import ServiceSettings
from recall_shared.testing import (
    create_database,
    delete_topics,
    drop_database,
    kafka_bootstrap,
    read_to_end,
    unique_name,
)
from recall_shared.topics import ALERTS, ORDERS, RECALLS, SELLERS, dead_letter_topic

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = "bench-kettle"
COLUMNS = (
    "line_id",
    "order_id",
    "customer_id",
    "product_id",
    "title",
    "gtin",
    "model_number",
    "model_key",
    "seller_id",
    "quantity",
    "returned_quantity",
    "cancelled",
    "unit_price",
    "currency",
    "lot",
    "serial",
    "placed_at",
    "manufactured_on",
    "best_before",
    "expires_on",
    "business_account_admin_id",
)


class BenchSettings(ServiceSettings):
    service_name: str = "bench-matcher"
    database_url: str = ""


async def load_index(dsn: str, total: int, matching: int, customers: int) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        start = datetime(2024, 1, 1, tzinfo=UTC)
        every = max(total // matching, 1)
        chunk = 200_000
        for base in range(0, total, chunk):
            rows = []
            for i in range(base, min(base + chunk, total)):
                recalled = i % every == 0 and i // every < matching
                customer = (i // every) * 2 % customers if recalled else (i * 7919) % customers
                rows.append(
                    (
                        f"l{i:09d}",
                        f"o{i // 2:09d}",
                        f"c{customer:08d}",
                        PRODUCT if recalled else f"p{i % 5000:05d}",
                        "Kettle",
                        None,
                        None,
                        None,
                        "s1",
                        1,
                        0,
                        False,
                        Decimal("29.99"),
                        "EUR",
                        None,
                        None,
                        start + timedelta(minutes=i % 500_000),
                        None,
                        None,
                        None,
                        None,
                    )
                )
            await conn.copy_records_to_table("purchase_lines", records=rows, columns=COLUMNS)
        await conn.execute("ANALYZE purchase_lines")
    finally:
        await conn.close()


async def bare_read(dsn: str, work_mem: str) -> tuple[float, int]:
    conn = await asyncpg.connect(dsn, server_settings={"work_mem": work_mem})
    try:
        started = time.perf_counter()
        n = 0
        async with conn.transaction():
            async for _ in conn.cursor(
                "SELECT * FROM purchase_lines WHERE product_id = $1 ORDER BY customer_id, line_id",
                PRODUCT,
                prefetch=5000,
            ):
                n += 1
        return time.perf_counter() - started, n
    finally:
        await conn.close()


async def append_or_send(
    producer,
    topic: str,
    batches: dict,
    futures: list,
    p: int,
    key: bytes,
    body: bytes,
    headers: list,
) -> None:
    """The bare pipelines' batching, by hand: append to the partition's batch, send it when full."""
    batch = batches.get(p) or producer.create_batch()
    if batch.append(key=key, value=body, timestamp=None, headers=headers) is None:
        futures.append(await producer.send_batch(batch, topic, partition=p))
        batch = producer.create_batch()
        batch.append(key=key, value=body, timestamp=None, headers=headers)
    batches[p] = batch


async def bare_pipeline(
    dsn: str,
    settings: BenchSettings,
    topic: str,
    recall: ev.RecallSnapshot,
    work_mem: str,
    collect: list | None = None,
) -> tuple[float, int]:
    """Cursor -> the same alert.raised.v1 records the matcher sends, encoded by hand -> aiokafka
    batch produce, to the last acknowledgement. No matching, no state: what a hand-written pipeline
    costs. With ``collect`` the records are only gathered there (for ``produce_only``), not sent."""
    conn = await asyncpg.connect(dsn, server_settings={"work_mem": work_mem})
    producer = create_producer(settings)
    await producer.start()
    try:
        partitions = sorted(await producer.partitions_for(topic))
        content = orjson.Fragment(recall.content.model_dump_json())
        started = time.perf_counter()
        now = datetime.now(UTC).isoformat().encode()
        # aiokafka is untyped: its batch builders and send futures are Any.
        batches: dict[int, Any] = {}
        futures: list[Any] = []
        sent = 0
        current, lines = None, []

        async def emit(customer: str, customer_lines: list) -> None:
            nonlocal sent
            alert_id = str(uuid.uuid5(NAMESPACE, f"{recall.recall_id}\x1f{customer}"))
            body = orjson.dumps(
                {
                    "alert": {
                        "alert_id": alert_id,
                        "alert_version": 1,
                        "customer_id": customer,
                        "recall_id": recall.recall_id,
                        "recall_version": recall.version,
                        "seller_id": None,
                        "tier": "confirmed",
                        "lines": customer_lines,
                        "recall": content,
                        "business_account_admin_id": None,
                    }
                },
                option=orjson.OPT_UTC_Z,
            )
            key = customer.encode()
            headers = [
                ("ce_specversion", b"1.0"),
                ("ce_id", f"{alert_id}:1:1:alert.raised.v1".encode()),
                ("ce_type", b"alert.raised.v1"),
                ("ce_source", b"/bench"),
                ("ce_time", now),
                ("content-type", b"application/json"),
                ("ce_subject", alert_id.encode()),
                ("ce_correlationid", b"bench"),
                ("ce_causationid", b"bench"),
            ]
            p = partitions[(murmur2(key) & 0x7FFFFFFF) % len(partitions)]
            if collect is not None:
                collect.append((p, key, body, headers))
                sent += 1
                return
            await append_or_send(producer, topic, batches, futures, p, key, body, headers)
            sent += 1

        async with conn.transaction():
            async for r in conn.cursor(
                "SELECT * FROM purchase_lines WHERE product_id = $1 ORDER BY customer_id, line_id",
                PRODUCT,
                prefetch=5000,
            ):
                if r["customer_id"] != current and current is not None:
                    await emit(current, lines)
                    lines = []
                current = r["customer_id"]
                lines.append(
                    {
                        "order_id": r["order_id"],
                        "line_id": r["line_id"],
                        "product_id": r["product_id"],
                        "title": r["title"],
                        "gtin": r["gtin"],
                        "model_number": r["model_number"],
                        "seller_id": r["seller_id"],
                        "purchased_at": r["placed_at"],
                        "units": r["quantity"] - r["returned_quantity"],
                        "unit_price": str(r["unit_price"]),
                        "currency": r["currency"],
                        "lot": r["lot"],
                        "serial": r["serial"],
                        "tier": "confirmed",
                        "unknown_attributes": [],
                    }
                )
            if current is not None:
                await emit(current, lines)
        for p, batch in batches.items():
            if batch.record_count():
                futures.append(await producer.send_batch(batch, topic, partition=p))
        await asyncio.gather(*futures)
        return time.perf_counter() - started, sent
    finally:
        await producer.stop()
        await conn.close()


async def produce_only(settings: BenchSettings, topic: str, records: list) -> float:
    """The same records, encoded beforehand, batch-produced to the last acknowledgement."""
    producer = create_producer(settings)
    await producer.start()
    try:
        started = time.perf_counter()
        # aiokafka is untyped: its batch builders and send futures are Any.
        batches: dict[int, Any] = {}
        futures: list[Any] = []
        for p, key, body, headers in records:
            await append_or_send(producer, topic, batches, futures, p, key, body, headers)
        for p, batch in batches.items():
            if batch.record_count():
                futures.append(await producer.send_batch(batch, topic, partition=p))
        await asyncio.gather(*futures)
        return time.perf_counter() - started
    finally:
        await producer.stop()


async def wait_until_on_topic(topic: str, expected: int, within_s: float) -> float:
    """When the topic's end offsets first add up to ``expected`` records (polled every 20 ms)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka_bootstrap(), group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in range(ALERTS.partitions)]
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            if sum((await consumer.end_offsets(parts)).values()) >= expected:
                return time.perf_counter()
            await asyncio.sleep(0.02)
        raise RuntimeError(f"fewer than {expected} records on {topic} within {within_s}s")
    finally:
        await consumer.stop()


# A fresh broker (or a group not yet placed) answers the coordinator lookup with these for a while.
COORDINATOR_NOT_READY = (
    GroupCoordinatorNotAvailableError,
    CoordinatorLoadInProgressError,
    NotCoordinatorForGroupError,
)


async def wait_for_group(group: str, within_s: float) -> None:
    """Until the consumer group is stable with a member: a recall published then is read at once.
    Coordinator errors of a fresh broker are retried meanwhile."""
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap())
    await admin.start()
    try:
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            try:
                described = await admin.describe_consumer_groups([group])
            except COORDINATOR_NOT_READY:
                await asyncio.sleep(0.2)
                continue
            for response in described:
                for g in response.groups:
                    # (error_code, group_id, state, protocol_type, protocol, members, ...)
                    if g[2] == "Stable" and g[5]:
                        return
            await asyncio.sleep(0.2)
        raise RuntimeError(f"consumer group {group} not stable within {within_s}s")
    finally:
        await admin.close()


async def count_raised(topic: str) -> int:
    """alert.raised.v1 records on the topic (read after the timing)."""
    return sum(
        1
        for r in await read_to_end(topic, timeout=60)
        if dict(r.headers).get("ce_type") == b"alert.raised.v1"
    )


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_matcher(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "purchase_matcher", "serve"], env=env, cwd=ROOT)


def bench_recall() -> ev.RecallSnapshot:
    """A new recall of the bench product (a new id: each round raises every alert anew)."""
    return ev.RecallSnapshot(
        recall_id=str(uuid.uuid4()),
        version=1,
        seller_id=None,
        published_at=datetime.now(UTC),
        content=ev.RecallContent(
            title="Bench kettle",
            hazard="Burns.",
            severity="high",
            stop_using="Stop.",
            remedies=[ev.Remedy(type="refund_on_destruction")],
        ),
        rules=[ev.ScopeRule(product_ids=[PRODUCT])],
    )


async def run_limits(
    dsn: str, settings: BenchSettings, topic: str, recall: ev.RecallSnapshot, work_mem: str
) -> dict[str, float]:
    read_s, read_rows = await bare_read(dsn, work_mem)
    bare_s, bare_sent = await bare_pipeline(dsn, settings, topic, recall, work_mem)
    records: list = []
    await bare_pipeline(dsn, settings, topic, recall, work_mem, collect=records)
    produce_s = await produce_only(settings, topic, records)
    return {
        "read_s": read_s,
        "bare_pipeline_s": bare_s,
        "produce_s": produce_s,
        "matching_lines": read_rows,
        "bare_alerts": bare_sent,
    }


async def run_system(
    settings: BenchSettings, recall: ev.RecallSnapshot, expected: int, within_s: float
) -> float:
    """recall.published.v1 produced -> ``expected`` more records on alerts.v1 than before."""
    alerts_topic = settings.topic_prefix + ALERTS.name
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap(), group_id=None)
    await consumer.start()
    try:
        parts = [TopicPartition(alerts_topic, p) for p in range(ALERTS.partitions)]
        before = sum((await consumer.end_offsets(parts)).values())
    finally:
        await consumer.stop()
    event = ev.RecallPublished(recall=recall)
    producer = create_producer(settings)
    await producer.start()
    on_topic = asyncio.create_task(wait_until_on_topic(alerts_topic, before + expected, within_s))
    await asyncio.sleep(0.5)
    started = time.perf_counter()
    e = wrap(event, source="/bench")
    await producer.send_and_wait(
        settings.topic_prefix + RECALLS.name,
        e.data,
        key=event.partition_key().encode(),
        headers=e.headers(),
    )
    await producer.stop()
    return await on_topic - started


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--index-lines", type=int, default=1_000_000)
    ap.add_argument("--matching-lines", type=int, default=100_000)
    ap.add_argument(
        "--customers",
        type=int,
        default=None,
        help="default: twice the matching lines (one line each)",
    )
    ap.add_argument("--timeout", type=float, default=3600)
    ap.add_argument(
        "--work-mem",
        default="128MB",
        help="PostgreSQL work_mem for the reads, system and limits alike",
    )
    ap.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="rounds of (system, limits); even rounds run the system first, odd ones the limits",
    )
    args = ap.parse_args()
    customers = args.customers or args.matching_lines * 2
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    db = unique_name("bench_matcher")
    url = await create_database(db)
    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    settings = BenchSettings(
        database_url=url, kafka_bootstrap_servers=kafka_bootstrap(), topic_prefix=prefix
    )
    proc = None
    rounds: list[dict] = []
    try:
        await asyncio.to_thread(upgrade, MIGRATIONS, url)
        t = time.perf_counter()
        await load_index(dsn, args.index_lines, args.matching_lines, customers)
        load_s = time.perf_counter() - t
        await create_topics(
            settings.kafka_bootstrap_servers,
            prefix,
            [RECALLS, ORDERS, ALERTS, SELLERS, dead_letter_topic("purchase-matcher")],
        )
        bare_topic = f"{prefix}bare.alerts"
        admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
        await admin.start()
        await admin.create_topics([NewTopic(bare_topic, ALERTS.partitions, 1)])
        await admin.close()
        conn = await asyncpg.connect(dsn)
        expected = await conn.fetchval(
            "SELECT count(DISTINCT customer_id) FROM purchase_lines WHERE product_id = $1", PRODUCT
        )
        await conn.close()

        env = {
            **os.environ,
            "PURCHASE_MATCHER_DATABASE_URL": url,
            "RECALL_ALERTS_TOPIC_PREFIX": prefix,
            "PURCHASE_MATCHER_HTTP_PORT": "18992",
            "PURCHASE_MATCHER_RECONCILE_WORK_MEM": args.work_mem,
            "PURCHASE_MATCHER_LOG_LEVEL": os.environ.get("BENCH_MATCHER_LOG_LEVEL", "WARNING"),
        }
        proc = start_matcher(env)
        await wait_for_group(prefix + "purchase-matcher", within_s=60)
        for i in range(args.rounds):
            recall = bench_recall()
            figures: dict = {"first": "system" if i % 2 == 0 else "limits"}
            for side in ("system", "limits") if i % 2 == 0 else ("limits", "system"):
                if side == "system":
                    figures["system_s"] = await run_system(settings, recall, expected, args.timeout)
                else:
                    figures.update(
                        await run_limits(dsn, settings, bare_topic, recall, args.work_mem)
                    )
            rounds.append(figures)
            print(f"round {i + 1}: {figures}", file=sys.stderr, flush=True)
        raised = await count_raised(prefix + ALERTS.name)
        if raised != expected * args.rounds:
            raise RuntimeError(
                f"{raised} alert.raised.v1 on the topic, expected {expected * args.rounds}"
            )
        rss = peak_rss_mb(proc.pid)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(30)
        await drop_database(db)
        await delete_topics(prefix)

    def median(key: str) -> float:
        return statistics.median(r[key] for r in rounds)

    system_s, bare_s = median("system_s"), median("bare_pipeline_s")
    read_s, produce_s = median("read_s"), median("produce_s")
    print(
        json.dumps(
            {
                "index_lines": args.index_lines,
                "work_mem": args.work_mem,
                "matching_lines": rounds[0]["matching_lines"],
                "alerts": expected,
                "load_index_s": round(load_s, 1),
                "rounds": [
                    {
                        "first": r["first"],
                        **{k: round(r[k], 2) for k in ("read_s", "produce_s", "bare_pipeline_s")},
                        "system_s": round(r["system_s"], 2),
                        "system_vs_bare": round(r["system_s"] / r["bare_pipeline_s"], 2),
                    }
                    for r in rounds
                ],
                "read_s": round(read_s, 2),
                "produce_s": round(produce_s, 2),
                "bare_pipeline_s": round(bare_s, 2),
                "bare_alerts": rounds[0]["bare_alerts"],
                "system_s": round(system_s, 2),
                "system_alerts_per_s": round(expected / system_s),
                "system_vs_bare": round(system_s / bare_s, 2),
                "system_vs_read": round(system_s / read_s, 2),
                "system_vs_produce": round(system_s / produce_s, 2),
                "matcher_peak_rss_mb": round(rss, 1),
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
