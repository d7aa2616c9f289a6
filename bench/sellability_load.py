"""Benchmark: purchase-matcher's checkout guard (POST /v1/sellability-checks) at a fixed
request rate, against a bare endpoint running the same lookup (bench/bare_guard.py: the guard's
in-process index, plain Starlette, nothing around it), in the same run.

    flock /tmp/recall-stack.lock .venv/bin/python bench/sellability_load.py --rate 1000 --seconds 10

A fresh purchase-matcher database holds ``--recalls`` active recalls (2,000: a half named by product
id, a quarter by GTIN with a lot constraint, a quarter by model number) and one operator key. Each
request is a basket of ``--lines`` lines (3) drawn from 20,000 products, about one line in ten named
by a recall, so answers mix allowed, blocked and needs_check. The baskets are drawn once (seeded)
and both sides get the same sequence. The load is vegeta (bench/vegeta.py, built on first use):
open loop at a constant rate, its own CPU measured (0.3-0.4 of a core at 1,000/s here). Each side
runs as its own uvicorn process, one worker, log level WARNING (no access log line). Both are
warmed up alike (``--warmup`` s each at the rate), then ``--rounds`` rounds measure each side for
``--seconds``, the side that goes first alternating. Prints one JSON
line: per measurement vegeta's p50/p99/max and success, the server's CPU per check, vegeta's own
CPU, and how busy the machine was meanwhile (``machine_cores``: every process, ``others_cores``:
less the two servers and vegeta: PostgreSQL and whatever else ran; ``steal_cores``: CPU the
hypervisor gave other machines); then the medians, the p99 ratio guard / bare, and whether the
guard's p99 met 5 ms in every round.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import uuid
from datetime import UTC, datetime

import asyncpg
import orjson
from cpu_meter import CpuMeter, machine_steal_s
from customer_api_load import free_port, start, wait_ready
from vegeta import attack, targets, vegeta_binary

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
from recall_shared.topics import all_topics

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


SIDES = ("guard", "bare")
TARGET_P99_MS = 5.0


def _ms(ns: float) -> float:
    return round(ns / 1e6, 2)


def measurement(
    side: str, report: dict, generator_cpu_s: float, spent: dict[str, float], seconds: float
) -> dict:
    """One side's run: vegeta's report, the CPU meter's figures over it."""
    lat, requests = report["latencies"], report["requests"]
    return {
        "side": side,
        "requests": requests,
        "rate": round(report["rate"]),
        "success": round(report["success"], 4),
        "status_codes": report["status_codes"],
        "p50_ms": _ms(lat["50th"]),
        "p99_ms": _ms(lat["99th"]),
        "max_ms": _ms(lat["max"]),
        "server_cpu_ms_per_check": round(1000 * spent[side] / max(requests, 1), 3),
        "generator_cpu_cores": round(generator_cpu_s / seconds, 3),
        "machine_cores": round(spent["machine"] / seconds, 2),
        "others_cores": round((spent["others"] - generator_cpu_s) / seconds, 2),
    }


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=float, default=1000)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--warmup", type=float, default=3)
    ap.add_argument("--recalls", type=int, default=2000)
    ap.add_argument("--lines", type=int, default=3)
    args = ap.parse_args()
    vegeta_binary()  # built before anything starts, if missing
    db = unique_name("bench_guard")
    url = await create_database(db)
    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    procs: dict[str, subprocess.Popen] = {}
    runs: list[dict] = []
    load_before = load_average()
    try:
        await asyncio.to_thread(upgrade, MIGRATIONS, url)
        key = await seed(dsn, args.recalls)
        # every topic, so that each of the service's consumers runs as it does in production
        await create_topics(kafka_bootstrap(), prefix, list(all_topics()))
        bodies = baskets(10_000, args.lines, args.recalls)
        ports = {"guard": free_port(), "bare": free_port()}
        env = {
            **os.environ,
            "PURCHASE_MATCHER_DATABASE_URL": url,
            "PURCHASE_MATCHER_HTTP_PORT": str(ports["guard"]),
            "PURCHASE_MATCHER_LOG_LEVEL": "WARNING",
            "RECALL_ALERTS_TOPIC_PREFIX": prefix,
            "RECALL_ALERTS_ENV": "test",
            "RECALL_ALERTS_API_KEY_PEPPER": PEPPER,
            "RECALL_ALERTS_JWT_SECRET": "bench-jwt-" + "j" * 32,
            "BARE_DSN": dsn,
            "BARE_PEPPER": PEPPER,
        }
        procs["guard"] = start(["purchase_matcher", "serve"], env)
        bare_args = ["--port", str(ports["bare"]), "--log-level", "warning", "--no-access-log"]
        procs["bare"] = start(["uvicorn", "bench.bare_guard:app", *bare_args], env)
        for port in ports.values():
            wait_ready(port)
        headers = {"X-Api-Key": key, "Content-Type": "application/json"}
        load = {
            side: targets(f"http://127.0.0.1:{ports[side]}{PATH}", headers, bodies)
            for side in SIDES
        }
        for side in SIDES:  # warm-up, both alike
            await asyncio.to_thread(attack, load[side], args.rate, args.warmup)
        meter = CpuMeter({side: procs[side].pid for side in SIDES})
        for i in range(args.rounds):
            for side in SIDES if i % 2 == 0 else SIDES[::-1]:
                meter.start()
                steal = machine_steal_s()
                report, generator_cpu_s = await asyncio.to_thread(
                    attack, load[side], args.rate, args.seconds
                )
                spent = meter.snapshot()
                stolen = round((machine_steal_s() - steal) / args.seconds, 2)
                runs.append(
                    {
                        "round": i,
                        **measurement(side, report, generator_cpu_s, spent, args.seconds),
                        "steal_cores": stolen,
                    }
                )
    finally:
        for p in procs.values():
            p.terminate()
            p.wait(30)
        await drop_database(db)
        await delete_topics(prefix)
    p99 = {side: [r["p99_ms"] for r in runs if r["side"] == side] for side in SIDES}
    p50 = {side: [r["p50_ms"] for r in runs if r["side"] == side] for side in SIDES}
    ratios = [round(g / b, 2) for g, b in zip(p99["guard"], p99["bare"], strict=True)]
    print(
        json.dumps(
            {
                "rate": args.rate,
                "seconds": args.seconds,
                "rounds": args.rounds,
                "recalls": args.recalls,
                "lines_per_check": args.lines,
                "load_average_before": load_before,
                "load_average_after": load_average(),
                "runs": runs,
                "median": {
                    side: {
                        "p50_ms": statistics.median(p50[side]),
                        "p99_ms": statistics.median(p99[side]),
                    }
                    for side in SIDES
                },
                "p99_ratio_guard_to_bare": ratios,
                "guard_p99_met_5ms_every_round": all(x <= TARGET_P99_MS for x in p99["guard"]),
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
