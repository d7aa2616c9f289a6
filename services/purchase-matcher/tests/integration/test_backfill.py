"""Bulk backfill of order history: from a JSON-lines export, and from a paginated HTTP API that can
be interrupted and resumed. Real PostgreSQL; the upstream order-history API is served in-process."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI, HTTPException
from sqlalchemy import func, select

import purchase_matcher
from purchase_matcher.backfill import backfill_file, backfill_http, write_jsonl
from purchase_matcher.models import PurchaseLine
from purchase_matcher.synthetic import Marketplace
from recall_shared import events as ev
from recall_shared.db import create_engine, create_session_factory
from recall_shared.envelope import to_structured
from recall_shared.testing import migrated_database

pytestmark = pytest.mark.integration
MIGRATIONS = Path(purchase_matcher.__file__).parent / "migrations"


@pytest.fixture
async def sessions():
    async with migrated_database(MIGRATIONS, "backfill") as url:
        from purchase_matcher.settings import Settings

        engine = create_engine(Settings(database_url=url))
        try:
            yield create_session_factory(engine)
        finally:
            await engine.dispose()


async def _index(sessions) -> dict[str, tuple[int, int, bool]]:
    async with sessions() as s:
        rows = (
            await s.execute(
                select(
                    PurchaseLine.line_id,
                    PurchaseLine.quantity,
                    PurchaseLine.returned_quantity,
                    PurchaseLine.cancelled,
                )
            )
        ).all()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def _expected(events: list[ev.Event]) -> dict[str, tuple[int, int, bool]]:
    state: dict[str, list] = {}
    orders: dict[str, list[str]] = {}
    for e in events:
        if isinstance(e, ev.OrderPlaced):
            for line in e.lines:
                state[line.line_id] = [line.quantity, 0, False]
            orders[e.order_id] = [line.line_id for line in e.lines]
        elif isinstance(e, ev.OrderCancelled):
            for lid in e.line_ids or orders[e.order_id]:
                state[lid][2] = True
        elif isinstance(e, ev.OrderLineReturned):
            state[e.line_id][1] += e.quantity
    return {k: tuple(v) for k, v in state.items()}


async def test_file_backfill_loads_every_line_and_a_rerun_changes_nothing(
    sessions, tmp_path: Path
) -> None:
    events = list(Marketplace(seed=21, products=40, customers=300).orders(1500))
    path = tmp_path / "orders.jsonl"
    write_jsonl(path, events)
    with path.open("ab") as fh:  # bad lines are reported, not fatal
        fh.write(b"not json\n")
        fh.write(
            b'{"specversion": "1.0", "id": "x", "type": "order.placed.v1", "data": {"order_id": '
            b'""}}\n'
        )
    report = await backfill_file(sessions, path, batch_size=200, progress=False)
    expected = _expected(events)
    assert report.failed == 2 and report.lines == len(expected)
    assert await _index(sessions) == expected, "cancellations and partial returns applied exactly"
    again = await backfill_file(sessions, path, batch_size=200, progress=False)
    assert again.lines == 0
    assert await _index(sessions) == expected, "a second run returns no unit twice"


def _upstream(events: list[ev.Event], fail_on_page: int | None) -> tuple[FastAPI, list[str | None]]:
    app = FastAPI()
    pages = [events[i : i + 100] for i in range(0, len(events), 100)]
    requested: list[str | None] = []

    @app.get("/orders")
    async def orders(cursor: str | None = None, limit: int = 100) -> dict:
        requested.append(cursor)
        page = int(cursor or 0)
        if fail_on_page is not None and page == fail_on_page and requested.count(cursor) == 1:
            raise HTTPException(503, "order history busy")
        body = [
            to_structured(e, source="/order-history", event_id=f"oh:{page}:{i}")
            for i, e in enumerate(pages[page])
        ]
        return {"events": body, "next_cursor": str(page + 1) if page + 1 < len(pages) else None}

    return app, requested


async def test_http_backfill_resumes_after_an_interruption(sessions) -> None:
    events = list(Marketplace(seed=22, products=30, customers=200).orders(500))
    app, requested = _upstream(events, fail_on_page=3)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://order-history"
    ) as client:
        with pytest.raises(httpx.HTTPStatusError):
            await backfill_http(
                sessions, "http://order-history/orders", client=client, limit=100, progress=False
            )
        assert requested == [None, "1", "2", "3"]
        await backfill_http(
            sessions, "http://order-history/orders", client=client, limit=100, progress=False
        )
    assert requested[4] == "3", "resumed at the page that failed, not from the start"
    assert await _index(sessions) == _expected(events)
    async with sessions() as s:
        assert await s.scalar(select(func.count()).select_from(PurchaseLine)) == len(
            _expected(events)
        )
