"""Benchmark: the transactional outbox relay against raw aiokafka produce of the same messages.

    .venv/bin/python bench/outbox_relay.py [--events 20000] [--payload-bytes 1500]

Both sides send the same CloudEvents (same headers, bodies and keys) to fresh topics with the same
idempotent acks=all producer settings. The limit is raw aiokafka: send every message, await every
ack. The outbox side measures the relay alone (rows already committed, relay started, until the
table is empty and every ack is in), and separately the cost of writing the rows in the services'
transactions. Prints one JSON line; docs/benchmarks.md records the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "shared" / "src"))

from recall_shared import events as ev
from recall_shared.db import new_metadata
from recall_shared.envelope import wrap
from recall_shared.kafka import create_producer, create_topics
from recall_shared.outbox import Outbox, OutboxRelay
from recall_shared.settings import ServiceSettings
from recall_shared.testing import (
    create_database,
    delete_topics,
    drop_database,
    kafka_bootstrap,
    unique_name,
)
from recall_shared.topics import ALERTS


class BenchSettings(ServiceSettings):
    service_name: str = "bench-outbox"
    database_url: str = ""


def make_events(n: int, payload_bytes: int) -> list[ev.AlertRaised]:
    content = ev.RecallContent(
        title="Bench kettle",
        hazard="h" * max(payload_bytes - 900, 10),
        severity="high",
        stop_using="Stop.",
        remedies=[ev.Remedy(type="refund_on_destruction")],
    )
    now = datetime.now(UTC)
    out = []
    for i in range(n):
        line = ev.AffectedLine(
            order_id=f"o{i}",
            line_id=f"l{i}",
            product_id="p1",
            seller_id="s1",
            purchased_at=now,
            units=1,
            unit_price=Decimal("19.99"),
            currency="EUR",
        )
        out.append(
            ev.AlertRaised(
                alert=ev.AlertState(
                    alert_id=str(uuid.uuid4()),
                    alert_version=1,
                    customer_id=f"c{i % 5000}",
                    recall_id="r1",
                    recall_version=1,
                    seller_id="s1",
                    tier="confirmed",
                    lines=[line],
                    recall=content,
                )
            )
        )
    return out


async def raw_produce(settings: BenchSettings, topic: str, events: list[ev.AlertRaised]) -> float:
    envs = [wrap(e, source="/bench", event_id=str(uuid.uuid4())) for e in events]
    producer = create_producer(settings)
    await producer.start()
    try:
        await _warm_up(producer, topic)
        started = time.perf_counter()
        futures = [
            await producer.send(
                topic, env.data, key=e.partition_key().encode(), headers=env.headers()
            )
            for env, e in zip(envs, events, strict=True)
        ]
        await asyncio.gather(*futures)
        return time.perf_counter() - started
    finally:
        await producer.stop()


async def _warm_up(producer, topic: str) -> None:
    """Metadata, connections and producer ids in place before the clock starts, for both sides
    alike."""
    await asyncio.gather(
        *[await producer.send(topic, b"warm-up", key=str(i).encode()) for i in range(200)]
    )


async def outbox_side(settings: BenchSettings, events: list[ev.AlertRaised]) -> tuple[float, float]:
    engine = create_async_engine(settings.database_url)
    async with engine.begin() as conn:
        await conn.run_sync(new_metadata().create_all)
        await conn.execute(text("TRUNCATE outbox"))
    outbox = Outbox(
        source="/bench", service=settings.service_name, topic_prefix=settings.topic_prefix
    )
    started = time.perf_counter()
    for i in range(
        0, len(events), 500
    ):  # as a service would: many transactions of a few hundred rows
        async with engine.begin() as conn:
            await outbox.add_many(AsyncSession(bind=conn), [(e, None) for e in events[i : i + 500]])
    write_s = time.perf_counter() - started
    producer = create_producer(settings)
    await producer.start()
    await _warm_up(producer, settings.topic_prefix + "alerts.v1")
    relay = OutboxRelay(
        database_url=settings.database_url,
        producer=producer,
        service=settings.service_name,
        batch_size=settings.outbox_batch_size,
        fallback_poll_s=0.05,
    )
    started = time.perf_counter()
    task = asyncio.create_task(relay.run())
    try:
        while True:
            async with engine.connect() as conn:
                left = await conn.scalar(text("SELECT count(*) FROM outbox"))
            if left == 0:
                break
            await asyncio.sleep(0.01)
        relay_s = time.perf_counter() - started
    finally:
        relay.stop()
        await task
        await producer.stop()
        await engine.dispose()
    return write_s, relay_s


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--payload-bytes", type=int, default=1500)
    parser.add_argument(
        "--batch-size", type=int, default=BenchSettings.model_fields["outbox_batch_size"].default
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="alternating rounds; medians are reported"
    )
    args = parser.parse_args()
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    db = unique_name("bench_outbox")
    url = await create_database(db)
    settings = BenchSettings(
        database_url=url,
        kafka_bootstrap_servers=kafka_bootstrap(),
        topic_prefix=prefix,
        outbox_batch_size=args.batch_size,
    )
    await create_topics(settings.kafka_bootstrap_servers, prefix, [ALERTS])
    events = make_events(args.events, args.payload_bytes)
    raws, writes, relays = [], [], []
    try:
        for _ in range(args.rounds):
            raws.append(await raw_produce(settings, prefix + "alerts.v1", events))
            w, r = await outbox_side(settings, events)
            writes.append(w)
            relays.append(r)
    finally:
        await drop_database(db)
        await delete_topics(prefix)
    raw_s, write_s, relay_s = (
        statistics.median(raws),
        statistics.median(writes),
        statistics.median(relays),
    )
    n = args.events
    print(
        json.dumps(
            {
                "events": n,
                "rounds": args.rounds,
                "batch_size": args.batch_size,
                "payload_bytes": len(events[0].model_dump_json()),
                "raw_produce_s": round(raw_s, 3),
                "raw_produce_per_s": round(n / raw_s),
                "relay_s": round(relay_s, 3),
                "relay_per_s": round(n / relay_s),
                "relay_vs_raw_throughput": round(raw_s / relay_s, 3),
                "outbox_write_s": round(write_s, 3),
                "outbox_write_per_s": round(n / write_s),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
