"""keep_listening, the loop of the workers woken by NOTIFY (the outbox relay; the notifier's
senders): the work runs on a connection that LISTENs on its channel; a failure is logged and the
work runs again on a new connection after a wait that doubles up to its cap; a database that
cannot be reached is waited out the same way; stopping ends a wait at once. Real PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

import asyncpg
import pytest
from sqlalchemy import text

from recall_shared.db import asyncpg_dsn
from recall_shared.listening import keep_listening
from recall_shared.waits import wait_set

pytestmark = pytest.mark.integration


def retry_lines(caplog: pytest.LogCaptureFixture, name: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage() == f"{name} failed; retrying"]


async def test_after_a_failure_the_work_runs_again_on_a_new_listening_connection(
    infra, caplog
) -> None:
    channel = f"listening_{uuid.uuid4().hex[:12]}"
    woken, stopping = asyncio.Event(), asyncio.Event()
    connections: list[asyncpg.Connection] = []
    heard = False

    async def work(conn: asyncpg.Connection) -> None:
        nonlocal heard
        connections.append(conn)
        if len(connections) == 1:
            raise RuntimeError("the connection broke")
        async with infra.session_factory() as session, session.begin():
            await session.execute(text(f"NOTIFY {channel}"))
        heard = await wait_set(woken, 5.0)
        stopping.set()

    caplog.set_level(logging.ERROR, logger="recall_shared.listening")
    await asyncio.wait_for(
        keep_listening(
            asyncpg_dsn(infra.database_url),
            channel,
            work,
            on_notify=woken.set,
            stopping=stopping,
            name="test worker",
            retry_initial_s=0.1,
        ),
        timeout=20,
    )
    assert heard, "the second connection listens on the channel"
    assert len(connections) == 2 and connections[0] is not connections[1]
    assert all(c.is_closed() for c in connections)
    (line,) = retry_lines(caplog, "test worker")
    assert line.__dict__["retry_in_s"] == 0.1 and line.exc_info is not None


class StopAfter(logging.Handler):
    """Keeps the worker's lines and sets ``stopping`` at the ``n``-th."""

    def __init__(self, n: int, stopping: asyncio.Event) -> None:
        super().__init__()
        self.n, self.stopping, self.records = n, stopping, list[logging.LogRecord]()

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        if len(self.records) == self.n:
            self.stopping.set()


async def retry_unreachable(n: int, initial_s: float, max_s: float) -> list[logging.LogRecord]:
    """keep_listening on a database nobody answers for, stopped at its ``n``-th failure line."""
    stopping = asyncio.Event()
    lines = StopAfter(n, stopping)
    worker_log = logging.getLogger("tests.listening.worker")
    worker_log.addHandler(lines)

    async def never_reached(conn: asyncpg.Connection) -> None:
        raise AssertionError("no connection to work on")

    try:
        await asyncio.wait_for(
            keep_listening(
                "postgresql://nobody@127.0.0.1:1/none",
                "nothing",
                never_reached,
                on_notify=lambda: None,
                stopping=stopping,
                name="test worker",
                logger=worker_log,
                retry_initial_s=initial_s,
                retry_max_s=max_s,
            ),
            timeout=20,
        )
    finally:
        worker_log.removeHandler(lines)
    assert {r.getMessage() for r in lines.records} == {"test worker failed; retrying"}
    return lines.records


async def test_an_unreachable_database_is_retried_with_doubling_waits() -> None:
    waits = [r.__dict__["retry_in_s"] for r in await retry_unreachable(5, 0.02, 0.1)]
    assert waits == [0.02, 0.04, 0.08, 0.1, 0.1], "doubling up to the cap"


async def test_stopping_ends_the_wait_at_once() -> None:
    started = time.monotonic()
    (line,) = await retry_unreachable(1, 30.0, 30.0)
    assert line.__dict__["retry_in_s"] == 30.0
    assert time.monotonic() - started < 10, "stopped during its 30 s wait"
