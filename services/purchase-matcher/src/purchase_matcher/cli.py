"""``purchase-matcher`` command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sqlalchemy import select

from purchase_matcher.app import create_app
from purchase_matcher.backfill import backfill_file, backfill_http, write_jsonl
from purchase_matcher.handlers import Matcher
from purchase_matcher.models import ActiveRecall
from purchase_matcher.settings import Settings
from purchase_matcher.synthetic import Marketplace
from recall_shared import events as ev
from recall_shared.cli import ServiceCli
from recall_shared.db import create_engine, create_session_factory
from recall_shared.envelope import wrap
from recall_shared.kafka import create_producer
from recall_shared.outbox import Outbox

MIGRATIONS = Path(__file__).parent / "migrations"


async def reconcile_active(settings: Settings, recall_id: str | None = None) -> dict[str, int]:
    """Bring the alerts of every active recall (or one) in line with the purchase index; new alerts
    go to alerts.v1 directly, the rest through the outbox (the running service's relay publishes
    it)."""
    engine = create_engine(settings)
    producer = create_producer(settings)
    totals: dict[str, int] = {}
    await producer.start()
    try:
        sessions = create_session_factory(engine)
        matcher = Matcher(
            Outbox(
                source=f"/recall-alerts/{settings.service_name}",
                service=settings.service_name,
                topic_prefix=settings.topic_prefix,
            ),
            lambda: producer,
            reader_work_mem=settings.reconcile_work_mem,
        )
        async with sessions() as session:
            stmt = select(ActiveRecall).where(ActiveRecall.status == "active")
            if recall_id:
                stmt = stmt.where(ActiveRecall.recall_id == recall_id)
            recalls = [
                ev.RecallSnapshot.model_validate(r.snapshot)
                for r in (await session.execute(stmt)).scalars()
            ]
        for recall in recalls:
            async with sessions() as session, session.begin():
                env = wrap(
                    ev.RecallAmended(recall=recall),
                    source="/recall-alerts/purchase-matcher/reconcile",
                )
                for k, v in (await matcher.reconcile(session, recall, env)).items():
                    totals[k] = totals.get(k, 0) + v
    finally:
        await producer.stop()
        await engine.dispose()
    return totals


async def _backfill(settings: Settings, args: argparse.Namespace) -> int:
    engine = create_engine(settings)
    try:
        sessions = create_session_factory(engine)
        if args.from_url:
            report = await backfill_http(sessions, args.from_url, limit=args.page_size)
        else:
            report = await backfill_file(sessions, Path(args.file), batch_size=args.batch_size)
    finally:
        await engine.dispose()
    print(report.summary())
    if not args.no_reconcile:
        totals = await reconcile_active(settings)
        print(
            "alerts after backfill: " + ", ".join(f"{k} {v:,}" for k, v in sorted(totals.items()))
        )
    return 0


def _generate(settings: Settings, args: argparse.Namespace) -> int:
    market = Marketplace(seed=args.seed, products=args.products, customers=args.customers)
    n = write_jsonl(Path(args.out), market.orders(args.orders))
    print(
        f"wrote {n:,} order events for {args.orders:,} orders (seed {args.seed}) to {args.out}",
        file=sys.stderr,
    )
    return 0


async def _reconcile(settings: Settings, args: argparse.Namespace) -> int:
    totals = await reconcile_active(settings, args.recall_id)
    print(", ".join(f"{k} {v:,}" for k, v in sorted(totals.items())) or "no active recall")
    return 0


def main(argv: list[str] | None = None) -> int:
    cli = ServiceCli(settings_factory=Settings, create_app=create_app, migrations_dir=MIGRATIONS)
    b = cli.command(
        "backfill-orders",
        "Load order history that predates orders.v1 (JSON lines file or HTTP API)",
    )(_backfill)
    src = b.add_mutually_exclusive_group(required=True)
    src.add_argument("file", nargs="?", help="JSON lines of structured CloudEvents (order.*.v1)")
    src.add_argument(
        "--from-url", help="GET <url>?cursor=&limit= -> {events, next_cursor}; resumable"
    )
    b.add_argument("--batch-size", type=int, default=2000)
    b.add_argument("--page-size", type=int, default=1000)
    b.add_argument(
        "--no-reconcile", action="store_true", help="Skip reconciling active recalls afterwards"
    )
    g = cli.command(
        "generate-orders", "Write a deterministic synthetic order history as JSON lines"
    )(_generate)
    g.add_argument("--seed", type=int, default=1)
    g.add_argument("--orders", type=int, default=10_000)
    g.add_argument("--customers", type=int, default=5_000)
    g.add_argument("--products", type=int, default=200)
    g.add_argument("--out", required=True)
    r = cli.command(
        "reconcile", "Recompute the alerts of active recalls against the purchase index"
    )(_reconcile)
    r.add_argument("--recall-id", default=None)
    return cli.run(argv)


if __name__ == "__main__":
    raise SystemExit(main())
