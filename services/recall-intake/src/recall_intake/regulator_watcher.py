"""The regulator watcher: polls CPSC, openFDA and EU Safety Gate (recall_intake.regulator_sources)
with httpx and turns new records into drafts through the importers (parse_record, import_record),
exactly as ``import-recalls`` does. Nothing is published automatically.

- **Cursors** (``regulator_cursors``): the newest record date imported, and the page a pass has
  reached, saved after each page's records are imported; a restart resumes at that page, and the
  next pass asks from that date.
- **Backoff**: a 429, a 5xx or a transport error is retried with capped, doubling delays (or the
  ``Retry-After`` the server gives), up to ``regulator_max_attempts`` per page; then the pass stops
  for that source, the error is kept in ``last_error``, and the next pass resumes there. Any other
  4xx, or a body of the wrong shape, stops the pass the same way.
- **Conditional requests**: each request of a pass is kept with the ``ETag`` and ``Last-Modified``
  it was answered with (``regulator_cursors.validators``, per source, keyed by the request's URL
  and query, since a validator belongs to the URL it came from) and the page after it. Asked again,
  it carries ``If-None-Match`` and ``If-Modified-Since``; a 304 is "nothing new": no body, nothing
  parsed or imported, logged and counted (``regulator_pages_total{outcome="not_modified"}``), and
  the pass goes on to the page kept with it. A pass that completes keeps only its own requests'.
  The date cursor moves the first request of the next pass after new records, so the pass after
  that is the first to be answered 304 when nothing changed.
- **Repeats**: a record seen before, or re-published with a changed body, is skipped by the importer
  (``regulator_records``), never a second draft.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from recall_intake.importers.base import RecordError
from recall_intake.importers.parsers import parse_record
from recall_intake.importers.service import import_record
from recall_intake.metrics import WatcherMetrics
from recall_intake.models import RegulatorCursor
from recall_intake.regulator_sources import SOURCES, Source
from recall_intake.settings import Settings
from recall_shared.service import ServiceRuntime
from recall_shared.waits import wait_set

log = logging.getLogger(__name__)

RETRIED = frozenset({408, 429, 500, 502, 503, 504})


class SourceUnavailable(Exception):
    pass


@dataclass
class PassResult:
    source: str
    pages: int = 0  # answered: fetched, or not modified
    not_modified: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    error: str | None = None


@dataclass(frozen=True)
class Answer:
    doc: Any  # the JSON body; None for a 304
    validators: dict[str, str]  # the ETag and Last-Modified the server gave, as it spelled them

    @property
    def not_modified(self) -> bool:
        return self.doc is None


def request_key(url: str, params: dict[str, str]) -> str:
    """The request a validator belongs to: the URL with its query, parameters in order."""
    return str(httpx.URL(url, params=sorted(params.items())))


def validators_of(response: httpx.Response) -> dict[str, str]:
    found = {
        "etag": response.headers.get("etag"),
        "last_modified": response.headers.get("last-modified"),
    }
    return {k: v for k, v in found.items() if v}


def conditional_headers(known: dict[str, Any] | None) -> dict[str, str]:
    """``If-None-Match`` and ``If-Modified-Since`` from what the same request was answered with
    last (RFC 9110 13.1: a server that has the ETag decides by it)."""
    headers = {}
    if known and known.get("etag"):
        headers["If-None-Match"] = known["etag"]
    if known and known.get("last_modified"):
        headers["If-Modified-Since"] = known["last_modified"]
    return headers


def retry_after_s(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    if value.strip().isdigit():
        return float(value)
    try:
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


class RegulatorWatcher:
    def __init__(
        self,
        settings: Settings,
        session_factory: async_sessionmaker[AsyncSession],
        metrics: WatcherMetrics,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.settings = settings
        self.session_factory = session_factory
        self.metrics = metrics
        self.sleep = sleep  # waits between retries (tests count them)
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def poll_once(self) -> list[PassResult]:
        """One pass over every configured source."""
        results = []
        async with httpx.AsyncClient(timeout=self.settings.regulator_timeout_s) as client:
            for name, url in self.settings.regulator_urls().items():
                results.append(await self.poll_source(client, SOURCES[name], url))
        return results

    async def run(self, runtime: ServiceRuntime) -> None:
        """Background task: a pass every ``regulator_poll_interval_s`` until stopped."""
        while not self._stopping.is_set():
            try:
                for result in await self.poll_once():
                    log.info(
                        "regulator pass",
                        extra={
                            "source": result.source,
                            "pages": result.pages,
                            "not_modified": result.not_modified,
                            **result.counts,
                        },
                    )
            except Exception:
                log.exception("regulator pass failed")
            # Stopping ends the wait at once (the service's stop waits for its tasks).
            await wait_set(self._stopping, self.settings.regulator_poll_interval_s)

    async def poll_source(self, client: httpx.AsyncClient, source: Source, url: str) -> PassResult:
        result = PassResult(source.name)
        since, page, known = await self._cursor(source.name)
        seen: dict[str, dict[str, Any]] = {}  # this pass's requests and their validators
        newest = since
        size = self.settings.regulator_page_size
        try:
            while True:
                params = source.params(since, page, size)
                key = request_key(url, params)
                answer = await self._get(client, url, params, known.get(key))
                if answer.not_modified:
                    kept = {**known[key], **answer.validators}
                    following = kept.get("following")
                    result.not_modified += 1
                    self.metrics.pages.labels(source.name, "not_modified").inc()
                    log.info(
                        "regulator page not modified", extra={"source": source.name, "page": page}
                    )
                else:
                    try:
                        records = source.records(answer.doc)
                    except ValueError as exc:
                        raise SourceUnavailable(f"unexpected body from {url}: {exc}") from None
                    for raw in records:
                        result.counts[await self._import(source, raw)] += 1
                        day = source.dated(raw)
                        if day is not None and (newest is None or day > newest):
                            newest = day
                    following = source.next_page(answer.doc, page, size)
                    kept = {**answer.validators, "following": following}
                    self.metrics.pages.labels(source.name, "fetched").inc()
                if answer.validators or answer.not_modified:
                    seen[key] = kept
                result.pages += 1
                if following is None:
                    await self._save(source.name, newest, 0, None, seen)
                    return result
                page = following
                await self._save(source.name, since, page, None, {**known, **seen})
        except SourceUnavailable as exc:
            result.error = str(exc)
            await self._save(source.name, since, page, result.error, {**known, **seen})
            log.warning(
                "regulator source unavailable", extra={"source": source.name, "error": str(exc)}
            )
            return result

    async def _get(
        self,
        client: httpx.AsyncClient,
        url: str,
        params: dict[str, str],
        known: dict[str, Any] | None,
    ) -> Answer:
        delay = self.settings.regulator_backoff_initial_s
        attempts = self.settings.regulator_max_attempts
        headers = conditional_headers(known)
        for attempt in range(1, attempts + 1):
            try:
                response = await client.get(url, params=params, headers=headers)
            except httpx.TransportError as exc:
                problem, wait = f"{type(exc).__name__}: {exc}", None
            else:
                if response.status_code == 200:
                    try:
                        return Answer(response.json(), validators_of(response))
                    except ValueError:
                        raise SourceUnavailable(f"{url} answered 200 with no JSON") from None
                if response.status_code == 304 and headers:
                    return Answer(None, validators_of(response))
                problem = f"{url} answered {response.status_code}"
                if response.status_code not in RETRIED:
                    raise SourceUnavailable(problem)
                wait = retry_after_s(response)
            if attempt == attempts:
                raise SourceUnavailable(f"{problem} ({attempts} attempts)")
            await self.sleep(
                min(wait if wait is not None else delay, self.settings.regulator_backoff_max_s)
            )
            delay = min(delay * 2, self.settings.regulator_backoff_max_s)
        raise AssertionError("unreachable")

    async def _import(self, source: Source, raw: Any) -> str:
        try:
            imported = parse_record(source.format, raw)
        except RecordError:
            return "failed"
        async with self.session_factory() as session:
            outcome = await import_record(session, imported)
        return outcome.status

    async def _cursor(self, name: str) -> tuple[date | None, int, dict[str, dict[str, Any]]]:
        async with self.session_factory() as session:
            row = await session.get(RegulatorCursor, name)
            return (row.since, row.page, dict(row.validators or {})) if row else (None, 0, {})

    async def _save(
        self,
        name: str,
        since: date | None,
        page: int,
        error: str | None,
        validators: dict[str, dict[str, Any]],
    ) -> None:
        values = {
            "source": name,
            "since": since,
            "page": page,
            "last_error": error,
            "validators": validators,
            "updated_at": datetime.now(UTC),
        }
        stmt = insert(RegulatorCursor).values(**values)
        async with self.session_factory() as session:
            await session.execute(
                stmt.on_conflict_do_update(
                    index_elements=["source"], set_={k: stmt.excluded[k] for k in values}
                )
            )
            await session.commit()
