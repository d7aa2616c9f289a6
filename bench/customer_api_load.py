"""Benchmark: customer-api's /v1/me/banner and /v1/me/alerts under a fixed request rate, against a bare
endpoint running the same queries on raw asyncpg (bench/bare_banner.py), in the same run.

    .venv/bin/python bench/customer_api_load.py --rate 1000 --seconds 10

Both servers run as their own uvicorn processes on one core's worth of work each (one worker), on a
fresh database seeded with 10,000 customers (a fifth with 1-3 alerts). The load is open-loop: request i is
due at t0 + i/rate whatever happened before, and its latency counts from when it was due, so a slow
server cannot hide its queue (no coordinated omission). Prints one JSON line.
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

ROOT = Path(__file__).resolve().parents[1]

from customer_api.cli import MIGRATIONS  # noqa: E402
from recall_shared import events as ev  # noqa: E402
from recall_shared.auth import issue_customer_token  # noqa: E402
from recall_shared.kafka import create_topics  # noqa: E402
from recall_shared.migrations import upgrade  # noqa: E402
from recall_shared.testing import (
    create_database,
    delete_topics,
    drop_database,
    kafka_bootstrap,
    unique_name,
)
from recall_shared.topics import ALERTS, NOTIFICATIONS, REMEDIES, dead_letter_topic  # noqa: E402

SECRET = "bench-jwt-secret-" + "b" * 32
SEVERITIES = ("critical", "high", "medium", "low")


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
                    stop_using="Stop.",  # type: ignore[arg-type]
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
        "INSERT INTO alerts (alert_id, customer_id, recall_id, alert_version, status, resolution, severity_rank, state, "
        "created_at, updated_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8::jsonb,$9,$9)",
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

    rnd = random.Random(1)
    for i in range(total):
        queue.put_nowait((t0 + i / rate, rnd.choice(tokens)))
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
    results: dict[str, dict] = {}
    try:
        await asyncio.to_thread(upgrade, MIGRATIONS, url)
        customers = await seed(dsn, args.customers)
        with_alerts = customers[::5]
        tokens = [issue_customer_token(c, SECRET) for c in (with_alerts * 4 + customers)[:5000]]
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
        procs.append(
            subprocess.Popen([sys.executable, "-m", "customer_api", "serve"], env=env, cwd=ROOT)
        )
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "bench.bare_banner:app",
                    "--port",
                    str(bare_port),
                    "--log-level",
                    "warning",
                    "--no-access-log",
                ],
                env=env,
                cwd=ROOT,
            )
        )
        wait_ready(api_port)
        wait_ready(bare_port)
        for path in ("/v1/me/banner", "/v1/me/alerts"):
            await load(api_port, path, tokens, args.rate, 2)  # warm-up, both sides
            await load(bare_port, path, tokens, args.rate, 2)
            results[f"customer_api{path}"] = await load(
                api_port, path, tokens, args.rate, args.seconds
            )
            results[f"bare{path}"] = await load(bare_port, path, tokens, args.rate, args.seconds)
    finally:
        for p in procs:
            p.terminate()
            p.wait(30)
        await drop_database(db)
        await delete_topics(prefix)
    out = {"rate": args.rate, "seconds": args.seconds, **results}
    for path in ("/v1/me/banner", "/v1/me/alerts"):
        api, bare = results[f"customer_api{path}"], results[f"bare{path}"]
        out[f"ratio{path}"] = {
            "rps": round(api["rps"] / bare["rps"], 2),
            "p99": round(api["p99_ms"] / bare["p99_ms"], 2),
        }
    print(json.dumps(out))


if __name__ == "__main__":
    asyncio.run(main())
