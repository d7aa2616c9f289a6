"""The row-level read path of the hot routes (GET /v1/me/banner and GET /v1/me/alerts).

The orders page asks for the banner on every view, so these routes skip what costs per request and
gives them nothing: the SQLAlchemy session (a pre-ping, BEGIN and ROLLBACK round trip around each
one-statement read, plus the ORM), validating each alert's stored state, and a response model. They
run the queries of :mod:`customer_api.queries` on a small asyncpg pool of their own and write the
JSON with orjson.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from typing import Any

import asyncpg
import orjson

from recall_shared.db import asyncpg_dsn
from recall_shared.service import ServiceRuntime

log = logging.getLogger(__name__)

APPLICATION_NAME = "customer-api-reads"

# How a pooled connection the server dropped (restart, failover, idle-session kill) shows: as an
# error of the query, or, when the server's goodbye arrived while it sat idle in the pool, as a
# connection stuck in a state that no reset query clears any more (the pool skips it, see
# _no_session_reset).
_CONNECTION_BROKEN: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.PostgresConnectionError,  # ConnectionDoesNotExistError among them
    # admin_shutdown, crash_shutdown, cannot_connect_now
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InterfaceError,  # "connection is closed"
    # "cannot switch to state ...; another operation is in progress"
    asyncpg.exceptions.InternalClientError,
    ConnectionError,
)

_JSON_OPTS = orjson.OPT_UTC_Z  # datetimes as pydantic writes them: ...Z


async def _no_session_reset(conn: asyncpg.Connection) -> None:
    """The pool's connections only run the read-only statements of :mod:`customer_api.queries`: they
    never SET, LISTEN, lock or open cursors, so there is no session state to clear on release, and
    asyncpg's reset query (a round trip per request) is skipped. An open transaction is still rolled
    back by asyncpg."""


class ReadPool:
    """An asyncpg pool for the read-only hot routes. It runs as one of the runtime's background
    tasks: opened when the service starts (or on first use, if the database was not reachable then),
    closed when it stops."""

    def __init__(self, database_url: str, *, min_size: int = 5, max_size: int = 10) -> None:
        self.dsn = asyncpg_dsn(database_url)
        self.min_size, self.max_size = min_size, max_size
        self._pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()
        self._stopping = asyncio.Event()

    async def _create(self) -> asyncpg.Pool:
        async with self._lock:
            if self._stopping.is_set():
                raise RuntimeError(
                    "the read pool is stopped"
                )  # a late request must not open a pool nobody closes
            if self._pool is None:
                self._pool = await asyncpg.create_pool(
                    self.dsn,
                    min_size=self.min_size,
                    max_size=self.max_size,
                    reset=_no_session_reset,
                    server_settings={"application_name": APPLICATION_NAME},
                )
        return self._pool

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        pool = self._pool or await self._create()
        try:
            return await self._fetch(pool, query, args)
        except _CONNECTION_BROKEN:
            # The server dropped a pooled connection; the others most likely went with it. Replace
            # them all (as SQLAlchemy's pool does on a disconnect, which pool_pre_ping then hides)
            # and read once more.
            await pool.expire_connections()
            return await self._fetch(pool, query, args)

    @staticmethod
    async def _fetch(pool: asyncpg.Pool, query: str, args: tuple[Any, ...]) -> list[asyncpg.Record]:
        async with pool.acquire() as conn:
            try:
                return await conn.fetch(query, *args)
            except _CONNECTION_BROKEN:
                with contextlib.suppress(
                    asyncpg.exceptions.InterfaceError
                ):  # already closed and given back
                    conn.terminate()  # never handed to the next request
                raise

    async def run(self, runtime: ServiceRuntime) -> None:
        """Background task: open the pool, hold it until the service stops, then close it."""
        try:
            try:
                await self._create()
            except Exception as exc:
                log.warning(
                    "read pool not opened at start", extra={"error": f"{type(exc).__name__}: {exc}"}
                )
            await self._stopping.wait()
        finally:
            pool, self._pool = self._pool, None
            if pool is not None:
                await pool.close()

    def stop(self) -> None:
        self._stopping.set()


# ------------------------------------------------------------------ JSON of rows


def summary_of(row: asyncpg.Record) -> dict[str, Any]:
    """An AlertSummary (api.AlertSummary, same fields and order) from a row of
    queries.SUMMARY_COLUMNS."""
    return {
        "alert_id": row[0],
        "recall_id": row[1],
        "status": row[2],
        "resolution": row[3],
        "tier": row[4],
        "kind": row[5],
        "title": row[6],
        "severity": row[7],
        "hazard": row[8],
        "stop_using": row[9],
        "images": orjson.Fragment(row[10]),
        "units": row[11],
        "acknowledged": row[12],
        "created_at": row[13],
        "updated_at": row[14],
    }


def banner_json(row: asyncpg.Record | None) -> tuple[bytes, str]:
    """The banner's body and its ETag, from the row of queries.BANNER (None: no open alert)."""
    if row is None:
        tag_basis = "0"
        body: dict[str, Any] = {"open_alerts": 0, "most_severe": None}
    else:
        count = row["open_count"]
        tag_basis = (
            f"{count}:{row['alert_id']}:{row['alert_version']}:{row['updated_at'].isoformat()}"
        )
        body = {"open_alerts": count, "most_severe": summary_of(row)}
    etag = '"' + hashlib.sha256(tag_basis.encode()).hexdigest()[:32] + '"'
    return orjson.dumps(body, option=_JSON_OPTS), etag


def alert_page_json(rows: list[asyncpg.Record], next_cursor: str | None) -> bytes:
    """An AlertPage from rows of queries.ALERTS."""
    return orjson.dumps(
        {"items": [summary_of(r) for r in rows], "next_cursor": next_cursor}, option=_JSON_OPTS
    )
