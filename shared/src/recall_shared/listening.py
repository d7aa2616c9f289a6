"""The loop of a background worker woken by PostgreSQL ``NOTIFY``: the outbox relay and the
notifier's senders hold one connection that ``LISTEN``s on their channel (with a poll as the
safety net) and must outlive a database outage.

:func:`keep_listening` connects, listens, and hands the connection to the work. When the work
fails the failure is logged, the connection closed, and after a wait (doubling up to a cap) it
starts over on a new connection; when the work returns, it starts over unless stopping. The work
returns when it is stopped or wants a new connection.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import asyncpg

from recall_shared.cancellation import is_failure, suppressed_failures
from recall_shared.waits import wait_set

log = logging.getLogger(__name__)


async def keep_listening(
    dsn: str,
    channel: str,
    work: Callable[[asyncpg.Connection], Awaitable[None]],
    *,
    on_notify: Callable[[], None],
    stopping: asyncio.Event,
    name: str,
    logger: logging.Logger | None = None,
    retry_initial_s: float = 0.5,
    retry_max_s: float = 10.0,
) -> None:
    """Run ``work(connection)`` on a connection listening on ``channel`` (``on_notify`` is called
    for each notification) until ``stopping`` is set. After a failure: log ``"<name> failed;
    retrying"`` on ``logger`` (the worker's), wait ``retry_initial_s``, doubled after each further
    failure up to ``retry_max_s`` (back to the first after a run that returned), and reconnect."""
    delay = retry_initial_s
    while not stopping.is_set():
        try:
            conn: asyncpg.Connection = await asyncpg.connect(dsn)
            try:
                await conn.add_listener(channel, lambda *_: on_notify())
                await work(conn)
            finally:
                with suppressed_failures():
                    await conn.close(timeout=2)
            delay = retry_initial_s
        except BaseException as exc:
            if not is_failure(exc):
                raise
            (logger or log).exception(f"{name} failed; retrying", extra={"retry_in_s": delay})
            await wait_set(stopping, delay)
            delay = min(delay * 2, retry_max_s)
