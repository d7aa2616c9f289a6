"""A small asyncpg pool for a hot read path, beside the service's SQLAlchemy engine.

A read asked on every page view or basket (customer-api's banner and alert list, purchase-matcher's
checkout guard) skips what costs per request and gives it nothing: the SQLAlchemy session's
pre-ping, BEGIN and ROLLBACK round trips around a one-statement read, and the ORM. Its statements
are fixed and read-only, so the pool skips asyncpg's reset query on release; a connection the server
dropped is terminated, the pool's connections replaced and the read retried once (what
``pool_pre_ping`` gives the engine). See docs/decisions/0006-raw-read-path-customer-api.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import asyncpg

from recall_shared.db import asyncpg_dsn
from recall_shared.service import ServiceRuntime

log = logging.getLogger(__name__)

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


async def _no_session_reset(conn: asyncpg.Connection) -> None:
    """The pool's connections only run fixed read-only statements: they never SET, LISTEN, lock or
    open cursors, so there is no session state to clear on release, and asyncpg's reset query (a
    round trip per request) is skipped. An open transaction is still rolled back by asyncpg."""


class ReadPool:
    """An asyncpg pool for the read-only hot routes. It runs as one of the runtime's background
    tasks: opened when the service starts (or on first use, if the database was not reachable then),
    closed when it stops."""

    def __init__(
        self,
        database_url: str,
        application_name: str = "recall-alerts-reads",
        *,
        min_size: int = 5,
        max_size: int = 10,
    ) -> None:
        self.dsn = asyncpg_dsn(database_url)
        self.application_name = application_name
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
                    server_settings={"application_name": self.application_name},
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
