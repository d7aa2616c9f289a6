"""What must run once although several instances (or a Job beside them) start it together: a
migration waits while another holds the database's migration lock (recall_shared.migrations), then
finds the version the other committed, so instances started with `serve --migrate` beside the
migration Job never run the same migration twice at once."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from notifier.cli import MIGRATIONS
from recall_shared.migrations import upgrade
from recall_shared.testing import admin_dsn, create_database, drop_database, eventually, unique_name

pytestmark = pytest.mark.integration

LOCK_KEY = "hashtextextended('recall_alerts.migrations', 0)"


async def test_a_migration_waits_for_the_one_in_progress() -> None:
    name = unique_name("runs_once")
    url = await create_database(name)
    other = await asyncpg.connect(admin_dsn().rsplit("/", 1)[0] + f"/{name}")
    try:
        await other.execute(f"SELECT pg_advisory_lock({LOCK_KEY})")  # another instance migrating
        migration = asyncio.ensure_future(asyncio.to_thread(upgrade, MIGRATIONS, url))

        async def waiting_on_the_lock() -> bool:
            return bool(
                await other.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 "
                    "AND wait_event_type = 'Lock' AND wait_event = 'advisory'",
                    name,
                )
            )

        await eventually(waiting_on_the_lock, timeout=60)
        assert not migration.done()
        assert await other.fetchval("SELECT to_regclass('alembic_version')") is None
        await other.execute(f"SELECT pg_advisory_unlock({LOCK_KEY})")
        await asyncio.wait_for(migration, 60)
        assert await other.fetchval("SELECT count(*) FROM alembic_version") == 1
    finally:
        await other.close()
        await drop_database(name)
