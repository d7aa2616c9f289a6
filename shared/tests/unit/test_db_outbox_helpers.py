from __future__ import annotations

import asyncio

import pytest

from recall_shared.consumer import Record
from recall_shared.db import asyncpg_dsn, connect_url, new_metadata
from recall_shared.outbox import notify_channel
from recall_shared.testing import eventually


def test_asyncpg_dsn_strips_the_driver() -> None:
    assert asyncpg_dsn("postgresql+asyncpg://u:p@h:5432/db") == "postgresql://u:p@h:5432/db"
    assert asyncpg_dsn("postgresql://u@h/db") == "postgresql://u@h/db"
    assert asyncpg_dsn("postgresql+asyncpg://u:p%40x@h/db") == "postgresql://u:p%40x@h/db"


def test_loopback_connects_without_tls_unless_the_url_asks_for_it() -> None:
    for host in ("127.0.0.1", "localhost", "[::1]"):
        url = f"postgresql+asyncpg://u:p@{host}:5432/db"
        assert connect_url(url).query == {"ssl": "disable"}
        assert asyncpg_dsn(url).endswith("/db?sslmode=disable")
    asked = "postgresql+asyncpg://u:p@127.0.0.1/db?ssl=require"
    assert connect_url(asked).query == {"ssl": "require"}
    assert asyncpg_dsn(asked).endswith("?sslmode=require")
    assert asyncpg_dsn("postgresql://u@127.0.0.1/db?sslmode=verify-full").endswith(
        "?sslmode=verify-full"
    )
    assert connect_url("postgresql+asyncpg://u:p@db.example.net/db").query == {}


def test_new_metadata_holds_outbox_and_inbox_and_is_fresh_each_time() -> None:
    a, b = new_metadata(), new_metadata()
    assert set(a.tables) == {"outbox", "inbox"}
    assert a is not b and a.tables["outbox"] is not b.tables["outbox"]
    assert [c.name for c in a.tables["inbox"].primary_key] == ["consumer_group", "event_id"]
    assert a.tables["outbox"].c.event_id.unique


def test_notify_channel_is_a_valid_identifier_per_service() -> None:
    assert notify_channel("recall-intake") == "outbox_recall_intake"
    assert notify_channel("notifier") != notify_channel("recall-intake")


def test_record_of_copies_a_kafka_record() -> None:
    class Raw:
        topic, partition, offset, key, value, headers = "t", 2, 7, b"k", b"v", (("a", b"1"),)

    rec = Record.of(Raw())
    assert (rec.topic, rec.partition, rec.offset, rec.key, rec.value) == ("t", 2, 7, b"k", b"v")
    assert rec.headers == [("a", b"1")]


async def test_eventually_returns_the_value_or_fails_with_the_last_result() -> None:
    calls = 0

    async def ready_on_third() -> int:
        nonlocal calls
        calls += 1
        return calls if calls >= 3 else 0

    assert await eventually(ready_on_third, timeout=5, interval=0.01) == 3

    async def never() -> list[int]:
        await asyncio.sleep(0)
        return []

    with pytest.raises(AssertionError, match="not met"):
        await eventually(never, timeout=0.05, interval=0.01)
