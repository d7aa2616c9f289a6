"""The regulator watcher against a local sandbox over HTTP (the conftest's ``loopback``) that serves
the real recorded records (tests/data/regulators) the way each feed does: CPSC as one array
filtered by RecallDateStart, openFDA paged by skip/limit with meta.results.total, Safety Gate paged
by page/size. Drafts land in a real, migrated PostgreSQL database.

The sandbox answers conditional requests as HTTP defines them (RFC 9110 8.8 and 13; none of the
three regulators documents validators of its own): a strong ETag over each response's body and a
Last-Modified (the newest record's day); If-None-Match decides when it is sent, If-Modified-Since
otherwise; a 304 has the validators and no body. Safety Gate is served with Last-Modified only.

Covered: new records become drafts and the cursors are saved; an unchanged feed creates nothing; a
re-published (changed) record is skipped and a new one created; a 503 is retried with backoff (its
Retry-After honoured); a feed that stays down stops the pass at that page, which the next pass
resumes; once the cursors have settled, an unchanged feed answers 304 to every page, nothing is
parsed or imported and the 304s are counted, and a change is fetched again."""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from recall_intake.cli import MIGRATIONS
from recall_intake.metrics import WatcherMetrics
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
    # (path, If-None-Match, If-Modified-Since, status answered) of every request
    answered: list[tuple[str, str | None, str | None, int]] = field(default_factory=list)
    no_etag: set[str] = field(default_factory=lambda: {"/gate"})  # Last-Modified only

    def conditional(self, request: Request, path: str, body: Any, records: list[dict]) -> Response:
        """200 with the body and its validators, or 304 when the request's condition says the
        client has this representation already."""
        content = json.dumps(body, sort_keys=True).encode()
        days = [d for r in records if (d := _day(r.get("published") or r.get("report-date")))]
        newest = max(days, default=date(2000, 1, 1))
        last_modified = format_datetime(
            datetime(newest.year, newest.month, newest.day, tzinfo=UTC), usegmt=True
        )
        headers = {"Last-Modified": last_modified}
        if path not in self.no_etag:
            headers["ETag"] = '"' + hashlib.sha256(content).hexdigest()[:32] + '"'
        if_none_match = request.headers.get("if-none-match")
        if_modified_since = request.headers.get("if-modified-since")
        if if_none_match is not None:  # RFC 9110 13.2.2: then If-Modified-Since is not looked at
            tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
            fresh = "*" in tags or headers.get("ETag") in tags
        elif if_modified_since is not None:
            try:
                fresh = parsedate_to_datetime(last_modified) <= parsedate_to_datetime(
                    if_modified_since
                )
            except (TypeError, ValueError):
                fresh = False  # an invalid date: the condition is ignored
        else:
            fresh = False
        status = 304 if fresh else 200
        self.answered.append((path, if_none_match, if_modified_since, status))
        if fresh:
            return Response(status_code=304, headers=headers)
        return Response(content, headers=headers, media_type="application/json")

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
        found = [r for r in self.cpsc if _day(r["published"]) >= start]  # type: ignore[operator]
        return self.conditional(request, "/cpsc", found, found)

    async def fda_feed(self, request: Request) -> Response:
        q = request.query_params
        skip, limit = int(q["skip"]), int(q["limit"])
        self.asked.append(("/fda", dict(q)))
        if fault := self._fault("/fda", skip // limit):
            return fault
        start = _day(q["search"].split("[", 1)[1].split(" ", 1)[0])
        found = [r for r in self.fda if _day(r["report-date"]) >= start]  # type: ignore[operator]
        meta = {"results": {"skip": skip, "limit": limit, "total": len(found)}}
        page = found[skip : skip + limit]
        return self.conditional(request, "/fda", {"meta": meta, "results": page}, page)

    async def gate_feed(self, request: Request) -> Response:
        q = request.query_params
        page, size = int(q["page"]), int(q["size"])
        self.asked.append(("/gate", dict(q)))
        if fault := self._fault("/gate", page):
            return fault
        start = _day(q.get("publishedFrom", "1900-01-01"))
        found = [r for r in self.gate if _day(r["published"]) >= start]  # type: ignore[operator]
        content = found[page * size : (page + 1) * size]
        body = {"content": content, "last": (page + 1) * size >= len(found)}
        return self.conditional(request, "/gate", body, content)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/cpsc", self.cpsc_feed),
                Route("/fda", self.fda_feed),
                Route("/gate", self.gate_feed),
            ]
        )


@dataclass
class Rig:
    sandbox: Sandbox
    watcher: RegulatorWatcher
    waits: list[float]
    settings: Settings
    registry: CollectorRegistry

    async def scalar(self, sql: str) -> Any:
        async with self.watcher.session_factory() as session:
            return (await session.execute(text(sql))).scalar()

    async def poll(self) -> dict[str, Any]:
        return {r.source: r for r in await self.watcher.poll_once()}


@pytest.fixture
async def rig(loopback: Any) -> AsyncIterator[Rig]:
    sandbox = Sandbox()
    async with loopback(sandbox.app()) as base, migrated_database(MIGRATIONS, "watch") as url:
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

        registry = CollectorRegistry()
        try:
            watcher = RegulatorWatcher(
                settings, create_session_factory(engine), WatcherMetrics(registry), sleep=no_wait
            )
            yield Rig(sandbox, watcher, waits, settings, registry)
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


async def test_an_unchanged_feed_answers_304_and_nothing_is_parsed_or_imported(rig: Rig) -> None:
    await rig.poll()  # everything new: imported, the cursors move to the newest day
    settled = await rig.poll()  # from the cursors: a new request (the newest day), skipped
    assert all(r.not_modified == 0 for r in settled.values())
    imported = await rig.scalar("SELECT count(*) FROM regulator_records")
    rig.sandbox.answered.clear()

    # Asked again, every page is conditional and answered 304: no body, nothing parsed.
    unchanged = await rig.poll()
    for result in unchanged.values():
        assert result.error is None and result.pages >= 1
        assert result.not_modified == result.pages and not result.counts, result
    assert rig.sandbox.answered and all(a[3] == 304 for a in rig.sandbox.answered)
    by_path = {path: (etag, since) for path, etag, since, _ in rig.sandbox.answered}
    assert by_path["/cpsc"][0] and by_path["/fda"][0]  # If-None-Match where there are ETags
    assert by_path["/gate"][0] is None and by_path["/gate"][1]  # If-Modified-Since alone
    assert await rig.scalar("SELECT count(*) FROM regulator_records") == imported
    for name, result in unchanged.items():
        labels = {"source": name, "outcome": "not_modified"}
        assert rig.registry.get_sample_value("regulator_pages_total", labels) == result.pages

    # A new CPSC record: that feed's body changes and is fetched; the others stay 304.
    rig.sandbox.cpsc.append({**copy.deepcopy(CPSC[1]), "ref": "26998", "published": "2026-12-02"})
    changed = await rig.poll()
    assert changed["cpsc"].not_modified == 0 and changed["cpsc"].counts["created"] == 1
    assert changed["openfda"].not_modified == changed["openfda"].pages
    assert changed["safety-gate"].not_modified == changed["safety-gate"].pages


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
