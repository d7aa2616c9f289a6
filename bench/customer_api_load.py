"""Benchmark: customer-api's /v1/me/banner and /v1/me/alerts under a fixed request rate, against a
bare endpoint running the same queries on raw asyncpg (bench/bare_banner.py), in the same run.

    .venv/bin/python bench/customer_api_load.py --rate 1000 --seconds 10

Both servers run as their own uvicorn processes on one core's worth of work each (one worker), on a
fresh database seeded with ``--customers`` customers (10,000; a fifth with 1-3 alerts). The load is
open-loop: request i is due at t0 + i/rate whatever happened before, and its latency counts from
when it was due, so a slow server cannot hide its queue (no coordinated omission).

Every customer has a token of its own, and requests go through them in a shuffled cycle, so a run
of ``rate * seconds`` requests uses min(that, customers) distinct customers and tokens (the output
says how many). Per endpoint: a warm-up with other tokens (the same customers, issued a minute
earlier: other strings), so it warms the code and the database but not customer-api's cache of
verified tokens; then a ``cold`` run (every measured token new to the cache) and a ``warm`` run (the
same tokens again, remembered while the cache holds them: CUSTOMER_API_JWT_CACHE_SIZE, 10,000 by
default). Each endpoint has token sets of its own. The bare endpoint verifies every token every time
and gets the same sequence. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import asyncpg

from customer_api.cli import MIGRATIONS
from recall_shared import events as ev
from recall_shared.auth import issue_customer_token
from recall_shared.kafka import create_topics
from recall_shared.migrations import upgrade
from recall_shared.testing import (
    create_database,
    delete_topics,
    drop_database,
    kafka_bootstrap,
    unique_name,
)
from recall_shared.topics import ALERTS, NOTIFICATIONS, REMEDIES, dead_letter_topic

ROOT = Path(__file__).resolve().parents[1]
SECRET = "bench-jwt-secret-" + "b" * 32
SEVERITIES = ("critical", "high", "medium", "low")
PATHS = ("/v1/me/banner", "/v1/me/alerts")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def seed(dsn: str, customers: int) -> list[str]:
    rnd = random.Random(7)
    conn = await asyncpg.connect(dsn)
    rows = []
    now = datetime.now(UTC)
    for c in range(customers):
        cid = f"cust-{c:06d}"
        for k in range(rnd.choice((1, 1, 2, 3)) if c % 5 == 0 else 0):
            sev = rnd.choice(SEVERITIES)
            state = ev.AlertState(
                alert_id=str(uuid.uuid4()),
                alert_version=1,
                customer_id=cid,
                recall_id=f"r{k}",
                recall_version=1,
                seller_id="s1",
                tier="confirmed",
                lines=[
                    ev.AffectedLine(
                        order_id="o1",
                        line_id=f"l{c}-{k}",
                        product_id="p1",
                        title="Kettle",
                        seller_id="s1",
                        purchased_at=now - timedelta(days=30),
                        units=1,
                        unit_price=Decimal("29.99"),
                        currency="EUR",
                    )
                ],
                recall=ev.RecallContent(
                    title=f"Recall {k}",
                    hazard="Burns.",
                    severity=sev,
                    stop_using="Stop.",
                    remedies=[ev.Remedy(type="refund_on_destruction")],
                ),
            )
            rows.append(
                (
                    state.alert_id,
                    cid,
                    state.recall_id,
                    1,
                    "open",
                    None,
                    SEVERITIES.index(sev),
                    state.model_dump_json(),
                    now - timedelta(minutes=k),
                )
            )
    await conn.executemany(
        "INSERT INTO alerts (alert_id, customer_id, recall_id, alert_version, status, resolution, "
        "severity_rank, state, created_at, updated_at) "
        "VALUES ($1,$2,$3,$4,$5,$6,$7,$8::jsonb,$9,$9)",
        rows,
    )
    await conn.execute("ANALYZE alerts")
    await conn.close()
    return [f"cust-{c:06d}" for c in range(customers)]


async def _request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str, token: str
) -> int:
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\r\n".encode()
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
    port: int, path: str, tokens: list[str], rate: float, seconds: float, connections: int = 64
) -> dict:
    """Open-loop load; request i uses ``tokens[i % len(tokens)]``."""
    total = int(rate * seconds)
    latencies: list[float] = []
    errors = 0
    queue: asyncio.Queue[tuple[float, str] | None] = asyncio.Queue()
    t0 = time.perf_counter() + 0.5

    async def worker() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while (item := await queue.get()) is not None:
            due, token = item
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                status = await _request(reader, writer, path, token)
                if status != 200:
                    errors += 1
            except (OSError, asyncio.IncompleteReadError):
                errors += 1
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            latencies.append(time.perf_counter() - due)
        writer.close()

    for i in range(total):
        queue.put_nowait((t0 + i / rate, tokens[i % len(tokens)]))
    for _ in range(connections):
        queue.put_nowait(None)
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    elapsed = time.perf_counter() - max(started, t0)
    latencies.sort()
    return {
        "requests": total,
        "distinct_tokens": len(set(tokens[:total])),
        "errors": errors,
        "rps": round(total / elapsed),
        "p50_ms": round(1000 * latencies[len(latencies) // 2], 2),
        "p99_ms": round(1000 * latencies[int(len(latencies) * 0.99) - 1], 2),
        "mean_ms": round(1000 * statistics.fmean(latencies), 2),
    }


def token_set(customers: list[str], minutes_ago: int) -> list[str]:
    """One token per customer, issued ``minutes_ago`` (each set's strings its own), shuffled."""
    issued = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    tokens = [issue_customer_token(c, SECRET, now=issued) for c in customers]
    random.Random(minutes_ago).shuffle(tokens)
    return tokens


def start(argv: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", *argv], env=env, cwd=ROOT)


def wait_ready(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                time.sleep(1.0)
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"port {port} not ready")


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=float, default=1000)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--customers", type=int, default=10_000)
    args = ap.parse_args()
    db = unique_name("bench_customer_api")
    url = await create_database(db)
    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    procs: list[subprocess.Popen] = []
    results: dict[str, dict] = {
        f"{side}{p}": {} for side in ("customer_api", "bare") for p in PATHS
    }
    try:
        await asyncio.to_thread(upgrade, MIGRATIONS, url)
        customers = await seed(dsn, args.customers)
        await create_topics(
            kafka_bootstrap(),
            prefix,
            [ALERTS, REMEDIES, NOTIFICATIONS, dead_letter_topic("customer-api")],
        )
        api_port, bare_port = free_port(), free_port()
        env = {
            **os.environ,
            "CUSTOMER_API_DATABASE_URL": url,
            "RECALL_ALERTS_TOPIC_PREFIX": prefix,
            "RECALL_ALERTS_JWT_SECRET": SECRET,
            "CUSTOMER_API_HTTP_PORT": str(api_port),
            "CUSTOMER_API_LOG_LEVEL": "WARNING",
            "BARE_DSN": dsn,
            "BARE_JWT_SECRET": SECRET,
        }
        procs.append(start(["customer_api", "serve"], env))
        bare_args = ["--port", str(bare_port), "--log-level", "warning", "--no-access-log"]
        procs.append(start(["uvicorn", "bench.bare_banner:app", *bare_args], env))
        wait_ready(api_port)
        wait_ready(bare_port)
        for k, path in enumerate(PATHS):
            warmup = token_set(customers, minutes_ago=2 * k + 1)
            measured = token_set(customers, minutes_ago=2 * k)
            await load(api_port, path, warmup, args.rate, 2)  # warm-up, both sides
            await load(bare_port, path, warmup, args.rate, 2)
            for cache in ("cold", "warm"):
                results[f"customer_api{path}"][cache] = await load(
                    api_port, path, measured, args.rate, args.seconds
                )
                results[f"bare{path}"][cache] = await load(
                    bare_port, path, measured, args.rate, args.seconds
                )
    finally:
        for p in procs:
            p.terminate()
            p.wait(30)
        await drop_database(db)
        await delete_topics(prefix)
    out = {
        "rate": args.rate,
        "seconds": args.seconds,
        "customers": args.customers,
        "distinct_customers_per_run": min(int(args.rate * args.seconds), args.customers),
        **results,
    }
    for path in PATHS:
        for cache in ("cold", "warm"):
            api, bare = results[f"customer_api{path}"][cache], results[f"bare{path}"][cache]
            out.setdefault(f"ratio{path}", {})[cache] = {
                "rps": round(api["rps"] / bare["rps"], 2),
                "p99": round(api["p99_ms"] / bare["p99_ms"], 2),
            }
    print(json.dumps(out))


if __name__ == "__main__":
    asyncio.run(main())
