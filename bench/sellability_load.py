"""Benchmark: purchase-matcher's checkout guard (POST /v1/sellability-checks) at a fixed
request rate, against a bare endpoint running the same lookup on raw asyncpg (bench/bare_guard.py),
in the same run.

    flock /tmp/recall-stack.lock .venv/bin/python bench/sellability_load.py --rate 1000 --seconds 10

A fresh purchase-matcher database holds ``--recalls`` active recalls (2,000: a half named by product
id, a quarter by GTIN with a lot constraint, a quarter by model number) and one operator key. Each
request is a basket of ``--lines`` lines (3) drawn from 20,000 products, about one line in ten named
by a recall, so answers mix allowed, blocked and needs_check. The baskets are drawn once (seeded)
and both sides get the same sequence. The load is open-loop: request i is due at t0 + i/rate
whatever happened before, and its latency counts from when it was due (no coordinated omission).
Each side runs as its own uvicorn process, one worker; a warm-up of 2 s each first (it also
validates every recall version once, on both sides). Prints one JSON line, with the load average
before and after (the machine is shared).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import time
import uuid
from datetime import UTC, datetime

import asyncpg
import orjson
from customer_api_load import free_port, start, wait_ready

from purchase_matcher.cli import MIGRATIONS
from recall_shared import events as ev
from recall_shared.auth import generate_api_key, hash_api_key
from recall_shared.identifiers import check_digit, model_key
from recall_shared.kafka import create_topics
from recall_shared.migrations import upgrade
from recall_shared.testing import (
    create_database,
    delete_topics,
    drop_database,
    kafka_bootstrap,
    unique_name,
)
from recall_shared.topics import ALERTS, ORDERS, RECALLS, SELLERS, dead_letter_topic

PEPPER = "bench-pepper-" + "p" * 32
PRODUCTS = 20_000
PATH = "/v1/sellability-checks"


def gtin_of(n: int) -> str:
    body = f"{n:013d}"
    return body + str(check_digit(body))


def product_of(n: int) -> tuple[str, str, str]:
    """(product id, GTIN-14, model number) of product n."""
    return f"prod-{n:05d}", gtin_of(n), f"MX-{n:05d}"


def recall_of(k: int, product: int) -> ev.RecallSnapshot:
    pid, gtin, model = product_of(product)
    rule = (
        ev.ScopeRule(product_ids=[pid])
        if k % 4 < 2
        else ev.ScopeRule(
            gtins=[gtin], lots=ev.CodeRule(ranges=[ev.CodeRange(first="100", last="199")])
        )
        if k % 4 == 2
        else ev.ScopeRule(model_numbers=[model])
    )
    return ev.RecallSnapshot(
        recall_id=str(uuid.UUID(int=k + 1)),
        version=1,
        seller_id=None,
        content=ev.RecallContent(
            title=f"Recall {k}",
            hazard="Burns.",
            severity="high",
            stop_using="Stop.",
            remedies=[ev.Remedy(type="refund_on_destruction")],
        ),
        rules=[rule],
        published_at=datetime.now(UTC),
    )


async def seed(dsn: str, recalls: int) -> str:
    """The recalls (every fifth product from 0 on, so a tenth of draws hit) and an operator key."""
    conn = await asyncpg.connect(dsn)
    rows, identifiers = [], []
    for k in range(recalls):
        snap = recall_of(k, (k * 5) % PRODUCTS)
        rows.append((snap.recall_id, 1, "active", snap.model_dump_json(), snap.published_at))
        rule = snap.rules[0]
        for kind, values in (
            ("product", rule.product_ids),
            ("gtin", rule.gtins),
            ("model", [key for m in rule.model_numbers if (key := model_key(m))]),
        ):
            identifiers += [(kind, v, snap.recall_id) for v in values]
    await conn.executemany(
        "INSERT INTO recalls (recall_id, version, status, snapshot, published_at) "
        "VALUES ($1, $2, $3, $4::jsonb, $5)",
        rows,
    )
    await conn.executemany(
        "INSERT INTO recall_identifiers (kind, value, recall_id) VALUES ($1, $2, $3)", identifiers
    )
    key = generate_api_key()
    await conn.execute(
        "INSERT INTO seller_keys (key_id, key_hash, role, seller_id, issued_at) "
        "VALUES ($1, $2, 'operator', NULL, now())",
        str(uuid.uuid4()),
        hash_api_key(key, PEPPER),
    )
    await conn.execute("ANALYZE")
    await conn.close()
    return key


def baskets(count: int, lines: int, recalls: int) -> list[bytes]:
    rnd = random.Random(16)
    recalled = [(k * 5) % PRODUCTS for k in range(recalls)]
    out = []
    for _ in range(count):
        basket = []
        for _ in range(lines):
            n = rnd.choice(recalled) if rnd.random() < 0.1 else rnd.randrange(PRODUCTS)
            pid, gtin, model = product_of(n)
            basket.append(
                {"product_id": pid, "seller_id": "s-1", "gtin": gtin, "model_number": model}
            )
        out.append(orjson.dumps({"lines": basket}))
    return out


async def _post(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, key: str, body: bytes
) -> int:
    writer.write(
        f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Api-Key: {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    if length:
        await reader.readexactly(length)
    return status


async def load(
    port: int, key: str, bodies: list[bytes], rate: float, seconds: float, connections: int = 64
) -> dict:
    """Open-loop load; request i sends ``bodies[i % len(bodies)]``."""
    total = int(rate * seconds)
    latencies: list[float] = []
    errors = 0
    queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()
    t0 = time.perf_counter() + 0.5

    async def worker() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while (item := await queue.get()) is not None:
            due, body = item
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                if await _post(reader, writer, key, body) != 200:
                    errors += 1
            except (OSError, asyncio.IncompleteReadError):
                errors += 1
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            latencies.append(time.perf_counter() - due)
        writer.close()

    for i in range(total):
        queue.put_nowait((t0 + i / rate, bodies[i % len(bodies)]))
    for _ in range(connections):
        queue.put_nowait(None)
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    elapsed = time.perf_counter() - max(started, t0)
    latencies.sort()
    return {
        "requests": total,
        "errors": errors,
        "rps": round(total / elapsed),
        "p50_ms": round(1000 * latencies[len(latencies) // 2], 2),
        "p99_ms": round(1000 * latencies[int(len(latencies) * 0.99) - 1], 2),
        "mean_ms": round(1000 * statistics.fmean(latencies), 2),
    }


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=float, default=1000)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--recalls", type=int, default=2000)
    ap.add_argument("--lines", type=int, default=3)
    args = ap.parse_args()
    db = unique_name("bench_guard")
    url = await create_database(db)
    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    procs = []
    results: dict[str, dict] = {}
    load_before = load_average()
    try:
        await asyncio.to_thread(upgrade, MIGRATIONS, url)
        key = await seed(dsn, args.recalls)
        topics = [RECALLS, ORDERS, SELLERS, ALERTS, dead_letter_topic("purchase-matcher")]
        await create_topics(kafka_bootstrap(), prefix, topics)
        bodies = baskets(int(args.rate * args.seconds), args.lines, args.recalls)
        api_port, bare_port = free_port(), free_port()
        env = {
            **os.environ,
            "PURCHASE_MATCHER_DATABASE_URL": url,
            "PURCHASE_MATCHER_HTTP_PORT": str(api_port),
            "PURCHASE_MATCHER_LOG_LEVEL": "WARNING",
            "RECALL_ALERTS_TOPIC_PREFIX": prefix,
            "RECALL_ALERTS_ENV": "test",
            "RECALL_ALERTS_API_KEY_PEPPER": PEPPER,
            "RECALL_ALERTS_JWT_SECRET": "bench-jwt-" + "j" * 32,
            "BARE_DSN": dsn,
            "BARE_PEPPER": PEPPER,
        }
        procs.append(start(["purchase_matcher", "serve"], env))
        bare_args = ["--port", str(bare_port), "--log-level", "warning", "--no-access-log"]
        procs.append(start(["uvicorn", "bench.bare_guard:app", *bare_args], env))
        wait_ready(api_port)
        wait_ready(bare_port)
        await load(api_port, key, bodies, args.rate, 2)  # warm-up, both sides
        await load(bare_port, key, bodies, args.rate, 2)
        results["guard"] = await load(api_port, key, bodies, args.rate, args.seconds)
        results["bare"] = await load(bare_port, key, bodies, args.rate, args.seconds)
    finally:
        for p in procs:
            p.terminate()
            p.wait(30)
        await drop_database(db)
        await delete_topics(prefix)
    guard, bare = results["guard"], results["bare"]
    print(
        json.dumps(
            {
                "rate": args.rate,
                "seconds": args.seconds,
                "recalls": args.recalls,
                "lines_per_check": args.lines,
                "load_average_before": load_before,
                "load_average_after": load_average(),
                **results,
                "ratio": {
                    "rps": round(guard["rps"] / bare["rps"], 2),
                    "p99": round(guard["p99_ms"] / bare["p99_ms"], 2),
                },
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
