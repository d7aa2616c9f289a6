"""Benchmark: a recall reaching many order lines, from recall.published.v1 to the last alert on alerts.v1.

    .venv/bin/python bench/matcher_scale.py --index-lines 1000000 --matching-lines 100000
    .venv/bin/python bench/matcher_scale.py --index-lines 10000000 --matching-lines 1000000   # the issue's size

The purchase index is bulk-loaded (COPY) into a fresh database; the matcher runs as its own process
(``python -m purchase_matcher serve``) on a fresh topic prefix. Measured in the same run:
- ``read``: a bare server-side cursor reading the matching rows in customer order (PostgreSQL's share);
- ``bare``: cursor -> encode one alert-sized JSON per customer -> aiokafka batch produce (send_batch),
  to the last acknowledgement: the limit a hand-written pipeline reaches;
- ``system``: recall published -> last alert.raised.v1 on the topic, through the matcher's consumer,
  reconcile, outbox and relay; and the matcher process's peak RSS (VmHWM).
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer

ROOT = Path(__file__).resolve().parents[1]

from purchase_matcher.cli import MIGRATIONS  # noqa: E402
from recall_shared import events as ev  # noqa: E402
from recall_shared.envelope import wrap  # noqa: E402
from recall_shared.kafka import create_producer, create_topics  # noqa: E402
from recall_shared.migrations import upgrade  # noqa: E402
from recall_shared.settings import ServiceSettings  # noqa: E402
from recall_shared.testing import create_database, drop_database, kafka_bootstrap, unique_name  # noqa: E402
from recall_shared.topics import ALERTS, ORDERS, RECALLS, dead_letter_topic  # noqa: E402

PRODUCT = "bench-kettle"
COLUMNS = ("line_id", "order_id", "customer_id", "product_id", "title", "gtin", "model_number", "model_key", "seller_id",
           "quantity", "returned_quantity", "cancelled", "unit_price", "currency", "lot", "serial", "placed_at",
           "manufactured_on", "best_before", "expires_on", "business_account_admin_id")


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
                rows.append((
                    f"l{i:09d}", f"o{i // 2:09d}", f"c{customer:08d}",
                    PRODUCT if recalled else f"p{i % 5000:05d}", "Kettle", None, None, None, "s1",
                    1, 0, False, Decimal("29.99"), "EUR", None, None, start + timedelta(minutes=i % 500_000),
                    None, None, None, None,
                ))
            await conn.copy_records_to_table("purchase_lines", records=rows, columns=COLUMNS)
        await conn.execute("ANALYZE purchase_lines")
    finally:
        await conn.close()


async def bare_read(dsn: str) -> tuple[float, int]:
    conn = await asyncpg.connect(dsn)
    try:
        started = time.perf_counter()
        n = 0
        async with conn.transaction():
            async for _ in conn.cursor("SELECT * FROM purchase_lines WHERE product_id = $1 ORDER BY customer_id, line_id",
                                       PRODUCT, prefetch=5000):
                n += 1
        return time.perf_counter() - started, n
    finally:
        await conn.close()


async def bare_pipeline(dsn: str, settings: BenchSettings, topic: str, payload: bytes) -> tuple[float, int]:
    """Cursor -> one encoded alert per customer -> aiokafka batch produce, to the last acknowledgement."""
    conn = await asyncpg.connect(dsn)
    producer = create_producer(settings)
    await producer.start()
    try:
        partitions = sorted(await producer.partitions_for(topic))
        started = time.perf_counter()
        batches: dict[int, object] = {}
        futures = []
        sent = 0
        current, lines = None, []

        async def emit(customer: str, customer_lines: list) -> None:
            nonlocal sent
            value = payload + orjson.dumps({"customer_id": customer, "lines": customer_lines})
            p = partitions[hash(customer) % len(partitions)]
            batch = batches.get(p) or producer.create_batch()
            if batch.append(key=customer.encode(), value=value, timestamp=None) is None:
                futures.append(await producer.send_batch(batch, topic, partition=p))
                batch = producer.create_batch()
                batch.append(key=customer.encode(), value=value, timestamp=None)
            batches[p] = batch
            sent += 1

        async with conn.transaction():
            async for r in conn.cursor("SELECT customer_id, line_id, order_id, quantity, unit_price FROM purchase_lines "
                                       "WHERE product_id = $1 ORDER BY customer_id, line_id", PRODUCT, prefetch=5000):
                if r["customer_id"] != current and current is not None:
                    await emit(current, lines)
                    lines = []
                current = r["customer_id"]
                lines.append([r["line_id"], r["order_id"], r["quantity"], str(r["unit_price"])])
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


async def count_until(topic: str, expected: int, timeout: float) -> float:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=kafka_bootstrap(), group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest", isolation_level="read_committed")
    await consumer.start()
    seen = 0
    deadline = time.monotonic() + timeout
    try:
        while seen < expected and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500, max_records=10_000)).values():
                seen += sum(1 for r in records if (dict(r.headers).get("ce_type") == b"alert.raised.v1"))
        return time.perf_counter()
    finally:
        await consumer.stop()
        if seen < expected:
            raise RuntimeError(f"only {seen}/{expected} alerts within {timeout}s")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--index-lines", type=int, default=1_000_000)
    ap.add_argument("--matching-lines", type=int, default=100_000)
    ap.add_argument("--customers", type=int, default=None, help="default: twice the matching lines (one line each)")
    ap.add_argument("--timeout", type=float, default=3600)
    args = ap.parse_args()
    customers = args.customers or args.matching_lines * 2
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    db = unique_name("bench_matcher")
    url = await create_database(db)
    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    settings = BenchSettings(database_url=url, kafka_bootstrap_servers=kafka_bootstrap(), topic_prefix=prefix)
    proc = None
    try:
        await asyncio.to_thread(upgrade, MIGRATIONS, url)
        t = time.perf_counter()
        await load_index(dsn, args.index_lines, args.matching_lines, customers)
        load_s = time.perf_counter() - t
        await create_topics(settings.kafka_bootstrap_servers, prefix,
                            [RECALLS, ORDERS, ALERTS, dead_letter_topic("purchase-matcher")])
        bare_topic = f"{prefix}bare.alerts"
        from aiokafka.admin import AIOKafkaAdminClient, NewTopic

        admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
        await admin.start()
        await admin.create_topics([NewTopic(bare_topic, ALERTS.partitions, 1)])
        await admin.close()
        conn = await asyncpg.connect(dsn)
        expected = await conn.fetchval("SELECT count(DISTINCT customer_id) FROM purchase_lines WHERE product_id = $1", PRODUCT)
        await conn.close()

        read_s, read_rows = await bare_read(dsn)
        sample = ev.RecallContent(title="Bench kettle", hazard="Burns.", severity="high", stop_using="Stop.",
                                  remedies=[ev.Remedy(type="refund_on_destruction")]).model_dump_json().encode()
        bare_s, bare_sent = await bare_pipeline(dsn, settings, bare_topic, sample)

        env = {**os.environ, "PURCHASE_MATCHER_DATABASE_URL": url, "RECALL_ALERTS_TOPIC_PREFIX": prefix,
               "PURCHASE_MATCHER_HTTP_PORT": "18992", "PURCHASE_MATCHER_LOG_LEVEL": "WARNING"}
        proc = subprocess.Popen([sys.executable, "-m", "purchase_matcher", "serve"], env=env, cwd=ROOT)
        await asyncio.sleep(4)  # consumer group join
        recall = ev.RecallSnapshot(
            recall_id=str(uuid.uuid4()), version=1, seller_id=None, published_at=datetime.now(UTC),
            content=ev.RecallContent(title="Bench kettle", hazard="Burns.", severity="high", stop_using="Stop.",
                                     remedies=[ev.Remedy(type="refund_on_destruction")]),
            rules=[ev.ScopeRule(product_ids=[PRODUCT])],
        )
        event = ev.RecallPublished(recall=recall)
        producer = create_producer(settings)
        await producer.start()
        counting = asyncio.create_task(count_until(prefix + "alerts.v1", expected, args.timeout))
        await asyncio.sleep(1)
        started = time.perf_counter()
        e = wrap(event, source="/bench")
        await producer.send_and_wait(prefix + "recalls.v1", e.data, key=event.partition_key().encode(), headers=e.headers())
        await producer.stop()
        finished = await counting
        system_s = finished - started
        rss = peak_rss_mb(proc.pid)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(30)
        await drop_database(db)
    print(json.dumps({
        "index_lines": args.index_lines, "matching_lines": read_rows, "alerts": expected, "load_index_s": round(load_s, 1),
        "read_s": round(read_s, 2), "bare_pipeline_s": round(bare_s, 2), "bare_alerts": bare_sent,
        "system_s": round(system_s, 2), "system_alerts_per_s": round(expected / system_s),
        "system_vs_bare": round(system_s / bare_s, 2), "system_vs_read": round(system_s / read_s, 2),
        "matcher_peak_rss_mb": round(rss, 1),
    }))


if __name__ == "__main__":
    asyncio.run(main())
