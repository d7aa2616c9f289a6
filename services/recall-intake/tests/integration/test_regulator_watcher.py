"""The regulator watcher against a local sandbox over HTTP (uvicorn on a free port) that serves
the real recorded records (tests/data/regulators) the way each feed does: CPSC as one array
filtered by RecallDateStart, openFDA paged by skip/limit with meta.results.total, Safety Gate paged
by page/size. Drafts land in a real, migrated PostgreSQL database.

Covered: new records become drafts and the cursors are saved; an unchanged feed creates nothing; a
re-published (changed) record is skipped and a new one created; a 503 is retried with backoff (its
Retry-After honoured); a feed that stays down stops the pass at that page, which the next pass
resumes."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import socket
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from recall_intake.cli import MIGRATIONS
from recall_intake.regulator_sources import _day
from recall_intake.regulator_watcher import RegulatorWatcher
from recall_intake.settings import Settings
from recall_shared.db import create_engine, create_session_factory
from recall_shared.testing import eventually, fast_test_settings, migrated_database

pytestmark = pytest.mark.integration

DATA = Path(__file__).resolve().parents[1] / "data" / "regulators"
SEEDS = json.loads((DATA / "canon-event_seeds_cpsc_and_eu_safetygate_2024-2026.json").read_text())
CPSC = [r for r in SEEDS["seeds"] if r["authority"] == "CPSC"]
GATE = [r for r in SEEDS["seeds"] if r["authority"] == "SAFETY_GATE"]
FDA = [
    json.loads(line)
    for line in (DATA / "openfda_res_ucm308307_enforcement_2012-06.jsonl").read_text().splitlines()
    if line.strip()
]
PAGE = 25


@dataclass
class Sandbox:
    """The three feeds, with faults a test can arrange: ``fail[path]`` answers that many 503s (with
    ``Retry-After: 0``) before serving again, ``down`` paths answer 503 until removed."""

    cpsc: list[dict] = field(default_factory=lambda: copy.deepcopy(CPSC))
    fda: list[dict] = field(default_factory=lambda: copy.deepcopy(FDA))
    gate: list[dict] = field(default_factory=lambda: copy.deepcopy(GATE))
    fail: dict[tuple[str, int], int] = field(default_factory=dict)  # (path, page) -> 503s left
    down: set[str] = field(default_factory=set)
    asked: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def _fault(self, path: str, page: int) -> Response | None:
        if path in self.down:
            return Response(status_code=503)
        if self.fail.get((path, page), 0) > 0:
            self.fail[path, page] -= 1
            return Response(status_code=503, headers={"Retry-After": "0"})
        return None

    async def cpsc_feed(self, request: Request) -> Response:
        self.asked.append(("/cpsc", dict(request.query_params)))
        if fault := self._fault("/cpsc", 0):
            return fault
        start = _day(request.query_params.get("RecallDateStart", "1900-01-01"))
        return JSONResponse([r for r in self.cpsc if _day(r["published"]) >= start])  # type: ignore[operator]

    async def fda_feed(self, request: Request) -> Response:
        q = request.query_params
        skip, limit = int(q["skip"]), int(q["limit"])
        self.asked.append(("/fda", dict(q)))
        if fault := self._fault("/fda", skip // limit):
            return fault
        start = _day(q["search"].split("[", 1)[1].split(" ", 1)[0])
        found = [r for r in self.fda if _day(r["report-date"]) >= start]  # type: ignore[operator]
        meta = {"results": {"skip": skip, "limit": limit, "total": len(found)}}
        return JSONResponse({"meta": meta, "results": found[skip : skip + limit]})

    async def gate_feed(self, request: Request) -> Response:
        q = request.query_params
        page, size = int(q["page"]), int(q["size"])
        self.asked.append(("/gate", dict(q)))
        if fault := self._fault("/gate", page):
            return fault
        start = _day(q.get("publishedFrom", "1900-01-01"))
        found = [r for r in self.gate if _day(r["published"]) >= start]  # type: ignore[operator]
        content = found[page * size : (page + 1) * size]
        return JSONResponse({"content": content, "last": (page + 1) * size >= len(found)})

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/cpsc", self.cpsc_feed),
                Route("/fda", self.fda_feed),
                Route("/gate", self.gate_feed),
            ]
        )


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the test's loop keeps its own signal handlers


@contextlib.asynccontextmanager
async def serving(app: Starlette) -> AsyncIterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = _Server(uvicorn.Config(app, lifespan="off", log_config=None, access_log=False))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert not task.done() and time.monotonic() < deadline, "sandbox did not start"
            await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, timeout=5)
        sock.close()


@dataclass
class Rig:
    sandbox: Sandbox
    watcher: RegulatorWatcher
    waits: list[float]
    settings: Settings

    async def scalar(self, sql: str) -> Any:
        async with self.watcher.session_factory() as session:
            return (await session.execute(text(sql))).scalar()

    async def poll(self) -> dict[str, Any]:
        return {r.source: r for r in await self.watcher.poll_once()}


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    sandbox = Sandbox()
    async with serving(sandbox.app()) as base, migrated_database(MIGRATIONS, "watch") as url:
        settings = Settings(
            **fast_test_settings(
                database_url=url,
                regulator_cpsc_url=f"{base}/cpsc",
                regulator_openfda_url=f"{base}/fda",
                regulator_safety_gate_url=f"{base}/gate",
                regulator_page_size=PAGE,
                regulator_max_attempts=3,
                regulator_backoff_initial_s=0.5,
            )
        )
        engine = create_engine(settings)
        waits: list[float] = []

        async def no_wait(seconds: float) -> None:
            waits.append(seconds)

        try:
            watcher = RegulatorWatcher(settings, create_session_factory(engine), sleep=no_wait)
            yield Rig(sandbox, watcher, waits, settings)
        finally:
            await engine.dispose()


def drafted(result: Any) -> int:
    return result.counts["created"] + result.counts["linked"]


async def test_new_then_unchanged_then_changed_records(rig: Rig) -> None:
    first = await rig.poll()
    assert drafted(first["cpsc"]) == len(CPSC) and first["cpsc"].pages == 1
    assert drafted(first["openfda"]) == len(FDA) - 2  # two FDA records have no recall number
    assert first["openfda"].counts["failed"] == 2 and first["openfda"].pages == 3
    assert drafted(first["safety-gate"]) == len(GATE) and first["safety-gate"].pages == 5
    assert not any(r.error for r in first.values())
    drafts = len(CPSC) + len(GATE) + len(FDA) - 2
    assert await rig.scalar("SELECT count(*) FROM regulator_records") == drafts
    newest_cpsc = max(_day(r["published"]) for r in CPSC)  # type: ignore[type-var]
    assert await rig.scalar("SELECT since FROM regulator_cursors WHERE source = 'cpsc'") == (
        newest_cpsc
    )
    assert await rig.scalar("SELECT max(page) FROM regulator_cursors") == 0

    # Unchanged feeds: asked from the cursors, so only the newest day comes again, and is skipped
    rig.sandbox.asked.clear()
    again = await rig.poll()
    assert all(r.counts["created"] == 0 and r.counts["linked"] == 0 for r in again.values())
    assert 0 < again["cpsc"].counts["skipped"] < len(CPSC)
    assert ("/cpsc", {"format": "json", "RecallDateStart": newest_cpsc.isoformat()}) in (
        rig.sandbox.asked
    )

    # CPSC re-publishes an old record with a changed body and a new date, and publishes a new one
    old = copy.deepcopy(CPSC[0])
    old["published"], old["hazard"] = "2026-12-01", old["hazard"] + " Updated."
    new = {**copy.deepcopy(CPSC[1]), "ref": "26999", "published": "2026-12-01"}
    rig.sandbox.cpsc += [old, new]
    changed = await rig.poll()
    assert changed["cpsc"].counts["created"] == 1
    assert await rig.scalar("SELECT count(*) FROM regulator_records") == drafts + 1
    seen = f"SELECT times_seen FROM regulator_records WHERE reference = '{old['ref']}'"
    assert await rig.scalar(seen) == 2  # imported, then re-published: skipped, no second draft
    assert changed["cpsc"].counts["skipped"] >= 1


async def test_a_503_is_retried_and_a_feed_that_stays_down_is_resumed(rig: Rig) -> None:
    rig.sandbox.fail["/fda", 1] = 2  # the second page answers 503 twice, then serves
    rig.sandbox.down.add("/gate")
    result = await rig.poll()
    assert result["openfda"].error is None and result["openfda"].pages == 3
    assert rig.waits[:2] == [0.0, 0.0]  # Retry-After: 0, honoured instead of the backoff
    gate = result["safety-gate"]
    assert gate.pages == 0 and "503 (3 attempts)" in (gate.error or "")
    assert rig.waits[-2:] == [0.5, 1.0]  # no Retry-After: doubling backoff
    assert "503" in await rig.scalar(
        "SELECT last_error FROM regulator_cursors WHERE source = 'safety-gate'"
    )

    # Up again, but its third page fails for good: the pass stops there, keeping pages 1-2
    rig.sandbox.down.clear()
    rig.sandbox.fail["/gate", 2] = 99
    stopped = (await rig.poll())["safety-gate"]
    assert stopped.pages == 2 and drafted(stopped) == 2 * PAGE
    assert await rig.scalar("SELECT page FROM regulator_cursors WHERE source = 'safety-gate'") == 2

    # The next pass resumes at page 2, not from the start
    rig.sandbox.fail.clear()
    rig.sandbox.asked.clear()
    resumed = (await rig.poll())["safety-gate"]
    assert [q["page"] for path, q in rig.sandbox.asked if path == "/gate"] == ["2", "3", "4"]
    assert drafted(resumed) == len(GATE) - 2 * PAGE and resumed.error is None


async def test_stopping_ends_the_wait_between_passes_at_once(rig: Rig) -> None:
    """The service's stop waits for its background tasks: the watcher must not sit out its poll
    interval (an hour by default) first."""
    rig.sandbox.down |= {"/cpsc", "/fda", "/gate"}  # a pass that gives up quickly
    task = asyncio.create_task(rig.watcher.run(None))  # type: ignore[arg-type]

    async def asked() -> bool:
        return bool(rig.sandbox.asked)

    await eventually(asked, timeout=10, interval=0.02)
    started = time.monotonic()
    rig.watcher.stop()
    await asyncio.wait_for(task, timeout=5)
    assert time.monotonic() - started < 2
