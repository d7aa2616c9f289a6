"""Bulk backfill of order history that predates orders.v1: from a JSON-lines export or an HTTP API.

Both read CloudEvents in structured mode (one object per event: specversion, id, type, source, data)
in the order history's order. Lines go into the purchase index in batches (insert-if-absent by line
id); cancellations and returns are applied once each (their event ids go through the inbox under the
``backfill`` group, so a re-run never returns a unit twice). The HTTP pull keeps its cursor in the
same transaction as each page's effects, so an interrupted pull resumes where it stopped. Alerts are
not raised per order here: after a backfill, every active recall is reconciled once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from purchase_matcher.handlers import order_line_rows
from purchase_matcher.models import BackfillCursor, PurchaseLine
from recall_shared import events as ev
from recall_shared import inbox
from recall_shared.envelope import EnvelopeError, InvalidEvent, UnknownEventType, from_structured
from recall_shared.progress import ProgressBar

log = logging.getLogger(__name__)
BACKFILL_GROUP = "backfill"
ORDER_EVENTS: dict[str, type[ev.Event]] = {
    cls.event_type: cls
    for cls in (ev.OrderPlaced, ev.OrderLineShipped, ev.OrderCancelled, ev.OrderLineReturned)
}


@dataclass
class BackfillReport:
    events: int = 0
    lines: int = 0
    skipped: int = 0
    failed: int = 0
    failures: dict[str, int] = field(default_factory=dict)

    def fail(self, reason: str) -> None:
        self.failed += 1
        key = reason[:120]
        self.failures[key] = self.failures.get(key, 0) + 1

    def summary(self) -> str:
        lines = [
            f"events {self.events:,}: order lines added {self.lines:,}, "
            f"skipped {self.skipped:,}, failed {self.failed:,}"
        ]
        lines += [
            f"  {n:,} x {reason}"
            for reason, n in sorted(self.failures.items(), key=lambda kv: -kv[1])
        ]
        return "\n".join(lines)


async def apply_batch(
    session: AsyncSession, batch: list[tuple[str, ev.Event]], report: BackfillReport
) -> None:
    """Apply one batch of order events inside the caller's transaction.

    All placements first (one bulk insert), then cancellations, returns and shipments in stream
    order: in order history a change never precedes the order it changes, so this keeps the stream's
    meaning.
    """
    rows = [row for _, e in batch if isinstance(e, ev.OrderPlaced) for row in order_line_rows(e)]
    report.events += len(batch)
    if rows:
        # executemany ("insertmanyvalues"): one compiled statement, rows sent in pages
        result = await session.execute(
            insert(PurchaseLine)
            .on_conflict_do_nothing(index_elements=["line_id"])
            .returning(PurchaseLine.line_id),
            rows,
        )
        added = len(result.all())
        report.lines += added
        report.skipped += len(rows) - added
    for event_id, event in batch:
        if isinstance(event, ev.OrderPlaced):
            continue
        if not await inbox.claim(session, BACKFILL_GROUP, event_id):
            report.skipped += 1
            continue
        if isinstance(event, ev.OrderCancelled):
            stmt = update(PurchaseLine).where(PurchaseLine.order_id == event.order_id)
            if event.line_ids is not None:
                stmt = stmt.where(PurchaseLine.line_id.in_(event.line_ids))
            await session.execute(stmt.values(cancelled=True))
        elif isinstance(event, ev.OrderLineReturned):
            await session.execute(
                update(PurchaseLine)
                .where(PurchaseLine.line_id == event.line_id)
                .values(returned_quantity=PurchaseLine.returned_quantity + event.quantity)
            )
        elif isinstance(event, ev.OrderLineShipped):
            learnt = {
                k: v
                for k, v in (
                    ("lot", event.lot),
                    ("serial", event.serial),
                    ("manufactured_on", event.manufactured_on),
                    ("best_before", event.best_before),
                    ("expires_on", event.expires_on),
                )
                if v is not None
            }
            if learnt:
                await session.execute(
                    update(PurchaseLine)
                    .where(PurchaseLine.line_id == event.line_id)
                    .values(**learnt)
                )


def parse_line(raw: bytes, report: BackfillReport) -> tuple[str, ev.Event] | None:
    try:
        return from_structured(orjson.loads(raw), ORDER_EVENTS)
    except orjson.JSONDecodeError as exc:
        report.fail(f"not JSON: {exc}")
    except UnknownEventType as exc:
        report.fail(f"not an order event: {exc}")
    except (EnvelopeError, InvalidEvent) as exc:
        report.fail(str(exc))
    return None


async def backfill_file(
    session_factory: async_sessionmaker[AsyncSession],
    path: Path,
    *,
    batch_size: int = 2000,
    progress: bool = True,
) -> BackfillReport:
    report = BackfillReport()
    total = (await asyncio.to_thread(path.stat)).st_size
    bar = ProgressBar(total, label=f"backfill {path.name} (bytes)") if progress else None
    batch: list[tuple[str, ev.Event]] = []
    with path.open("rb") as fh:
        for raw in fh:
            if bar:
                bar.advance(len(raw))
            if not raw.strip():
                continue
            parsed = parse_line(raw, report)
            if parsed is not None:
                batch.append(parsed)
            if len(batch) >= batch_size:
                async with session_factory() as session, session.begin():
                    await apply_batch(session, batch, report)
                batch = []
    if batch:
        async with session_factory() as session, session.begin():
            await apply_batch(session, batch, report)
    if bar:
        bar.counts = {"lines": report.lines, "failed": report.failed}
        bar.close()
    return report


async def _pages(
    client: httpx.AsyncClient, url: str, cursor: str | None, limit: int
) -> AsyncIterator[tuple[list, str | None]]:
    while True:
        params = {"limit": str(limit), **({"cursor": cursor} if cursor else {})}
        r = await client.get(url, params=params)
        r.raise_for_status()
        body = r.json()
        cursor = body.get("next_cursor")
        yield body.get("events", []), cursor
        if not cursor:
            return


async def backfill_http(
    session_factory: async_sessionmaker[AsyncSession],
    url: str,
    *,
    client: httpx.AsyncClient | None = None,
    limit: int = 1000,
    progress: bool = True,
    max_pages: int | None = None,
) -> BackfillReport:
    """Pull ``GET url?cursor=&limit=`` -> ``{"events": [...], "next_cursor": "..."|null}`` until
    done.

    The cursor is saved with each page's effects; a second call resumes after the last committed
    page.
    """
    report = BackfillReport()
    async with session_factory() as session:
        saved = await session.get(BackfillCursor, url)
        cursor = saved.cursor if saved else None
        if saved and saved.finished_at is not None:
            log.info("backfill already finished for this source", extra={"source": url})
            return report
    bar = ProgressBar(None, label=f"backfill {url}") if progress else None
    own = client is None
    client = client or httpx.AsyncClient(timeout=30.0)
    pages = 0
    try:
        async for events, next_cursor in _pages(client, url, cursor, limit):
            batch = [
                p for raw in events if (p := parse_line(orjson.dumps(raw), report)) is not None
            ]
            async with session_factory() as session, session.begin():
                await apply_batch(session, batch, report)
                values = {
                    "source": url,
                    "cursor": next_cursor,
                    "updated_at": datetime.now(UTC),
                    "finished_at": None if next_cursor else datetime.now(UTC),
                }
                stmt = insert(BackfillCursor).values(**values)
                await session.execute(
                    stmt.on_conflict_do_update(
                        index_elements=["source"], set_={k: stmt.excluded[k] for k in values}
                    )
                )
            if bar:
                bar.advance(len(events), lines=0)
            pages += 1
            if max_pages is not None and pages >= max_pages:
                break
    finally:
        if own:
            await client.aclose()
        if bar:
            bar.counts = {"lines": report.lines, "failed": report.failed}
            bar.close()
    return report


def write_jsonl(
    path: Path, events: Iterable[ev.Event], source: str = "/synthetic/order-history"
) -> int:
    from recall_shared.envelope import to_structured

    n = 0
    with path.open("wb") as fh:
        for i, event in enumerate(events):
            fh.write(
                orjson.dumps(to_structured(event, source=source, event_id=f"{source}:{i}")) + b"\n"
            )
            n += 1
    return n
