"""Benchmark: what refund-logistics' reach gauge (``recall_reach_customers``, read from its database
on every /metrics scrape) costs when an open recall reaches a million customers.

    .venv/bin/python bench/reach_gauge_cost.py [--customers 1000000] [--runs 5]

A fresh refund-logistics database (its migrations) is filled with one open recall of ``--customers``
customers (1% of their alerts withdrawn; per customer an email notice, delivered, sent or bounced,
and an SMS after each bounce), a closed recall half as large, and 20 small open recalls; then the
service's own state gauges (refund_logistics.metrics.STATE_GAUGES) are read as a scrape reads them
(recall_shared.metrics.Metrics.refresh, with its 5 s limit), ``--runs`` times, and the reach query's
plan is printed, then one JSON line of figures; docs/benchmarks.md records them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from recall_shared.metrics import Metrics
from recall_shared.testing import migrated_database
from refund_logistics.metrics import STATE_GAUGES

MIGRATIONS = (
    Path(__file__).resolve().parents[1]
    / "services"
    / "refund-logistics"
    / "src"
    / "refund_logistics"
    / "migrations"
)
REACH = next(g for g in STATE_GAUGES if g.name == "recall_reach_customers")

_RECALLS = """
INSERT INTO recalls (recall_id, version, status, logistics_enrolled, consumer_contact, title)
SELECT id, 1, status, true, '', id
FROM (VALUES ('rc-big', 'active'), ('rc-closed', 'closed')) v(id, status)
UNION ALL
SELECT 'rc-small-' || i, 1, 'active', true, '', 'small' FROM generate_series(1, 20) i
"""
_ALERTS = """
INSERT INTO alerts (alert_id, customer_id, recall_id, alert_version, status, lines, units)
SELECT md5(:recall || '/' || i)::uuid::text, 'cust-' || i, :recall, 1,
       CASE WHEN i % 100 = 0 THEN 'withdrawn' ELSE 'open' END, '[]'::jsonb, 1
FROM generate_series(1, :n) i
"""
_NOTICES = """
INSERT INTO notices (notice_id, alert_id, customer_id, recall_id, kind, channel, status, at)
SELECT :recall || '-' || i || '-email', md5(:recall || '/' || i)::uuid::text, 'cust-' || i, :recall,
       'initial', 'email',
       CASE WHEN i % 10 = 0 THEN 'bounced' WHEN i % 10 < 3 THEN 'sent' ELSE 'delivered' END, now()
FROM generate_series(1, :n) i
UNION ALL
SELECT :recall || '-' || i || '-sms', md5(:recall || '/' || i)::uuid::text, 'cust-' || i, :recall,
       'initial', 'sms', 'sent', now()
FROM generate_series(10, :n, 10) i
"""


async def fill(url: str, customers: int) -> float:
    started = time.perf_counter()
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(_RECALLS))
            for recall, n in [("rc-big", customers), ("rc-closed", customers // 2)] + [
                (f"rc-small-{i}", 1000) for i in range(1, 21)
            ]:
                await conn.execute(text(_ALERTS), {"recall": recall, "n": n})
                await conn.execute(text(_NOTICES), {"recall": recall, "n": n})
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("VACUUM ANALYZE"))
    finally:
        await engine.dispose()
    return time.perf_counter() - started


async def measure(url: str, runs: int) -> tuple[dict[str, object], list[str]]:
    """The figures, and the reach query's plan."""
    engine = create_async_engine(url)
    try:
        timings, failed = [], 0
        for _ in range(runs):
            metrics = Metrics("bench-reach")  # fresh: a read that failed (timed out) shows nothing
            metrics.add_state_gauges(STATE_GAUGES)
            started = time.perf_counter()
            await metrics.refresh(engine, min_interval_s=0)
            timings.append(time.perf_counter() - started)
            failed += b'recall_id="rc-big"' not in metrics.render()
        reach_timings = []
        async with engine.connect() as conn:
            for _ in range(runs):
                started = time.perf_counter()
                rows = (await conn.execute(text(REACH.sql))).all()
                reach_timings.append(time.perf_counter() - started)
            plan = (await conn.execute(text("EXPLAIN (ANALYZE, BUFFERS) " + REACH.sql))).scalars()
            plan_lines = [str(line) for line in plan]
        big = {measure: value for recall, measure, value in rows if recall == "rc-big"}
    finally:
        await engine.dispose()
    figures: dict[str, object] = {
        "scrape_read_s_median": round(statistics.median(timings), 3),
        "scrape_read_s_max": round(max(timings), 3),
        "scrape_reads_failed": f"{failed} of {runs}",
        "reach_query_s_median": round(statistics.median(reach_timings), 3),
        "reach_series": len(rows),
        "big_recall": big,
    }
    return figures, plan_lines


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    async with migrated_database(MIGRATIONS, prefix="bench_reach") as url:
        fill_s = await fill(url, args.customers)
        result, plan = await measure(url, args.runs)
    print("\n".join(plan))
    print(json.dumps({"customers": args.customers, "fill_s": round(fill_s, 1), **result}))


if __name__ == "__main__":
    asyncio.run(main())
