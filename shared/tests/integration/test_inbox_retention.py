"""The inbox forgets applied event ids after the retention period, in batches, and a service does it
by itself in the background."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from recall_shared import events as ev
from recall_shared import inbox
from recall_shared.service import ServiceRuntime
from recall_shared.testing import eventually
from recall_shared.topics import ALERTS

pytestmark = pytest.mark.integration


async def _seed(infra, old: int, recent: int) -> None:
    now = datetime.now(UTC)
    async with infra.engine.begin() as conn:
        await conn.execute(
            text("INSERT INTO inbox (consumer_group, event_id, processed_at) VALUES (:g, :e, :t)"),
            [
                {"g": "g", "e": f"old-{i}", "t": now - timedelta(days=40, minutes=i)}
                for i in range(old)
            ]
            + [{"g": "g", "e": f"new-{i}", "t": now - timedelta(days=2)} for i in range(recent)],
        )


async def test_purge_forgets_only_ids_older_than_the_cutoff_in_batches(infra) -> None:
    await _seed(infra, old=25, recent=5)
    purged = await inbox.purge(
        infra.engine, datetime.now(UTC) - timedelta(days=30), batch=7
    )  # 4 batches
    assert purged == 25
    assert await infra.scalar("SELECT count(*) FROM inbox WHERE event_id LIKE 'old-%'") == 0
    assert await infra.scalar("SELECT count(*) FROM inbox WHERE event_id LIKE 'new-%'") == 5
    assert await inbox.purge(infra.engine, datetime.now(UTC) - timedelta(days=30)) == 0


async def test_a_running_service_purges_its_inbox_by_itself(infra) -> None:
    await infra.create_topics(ALERTS)
    await _seed(infra, old=3, recent=2)
    runtime = ServiceRuntime(
        infra.settings(inbox_retention_days=30, inbox_purge_interval_s=0.2), run_relay=False
    )

    async def ignore(session, event, env) -> None:
        return None

    runtime.add_consumer([ALERTS], {ev.AlertClosed: ignore})
    await runtime.start()
    try:
        assert "inbox-retention" in runtime._tasks
        await eventually(lambda: _count_old(infra), timeout=10)
        await _seed_more_old(infra)  # and again on its next round
        await eventually(lambda: _count_old(infra), timeout=10)
    finally:
        await runtime.stop()
    assert await infra.scalar("SELECT count(*) FROM inbox") == 2


async def _count_old(infra) -> bool:
    return await infra.scalar("SELECT count(*) FROM inbox WHERE event_id LIKE 'old-%'") == 0


async def _seed_more_old(infra) -> None:
    async with infra.engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO inbox (consumer_group, event_id, processed_at) "
                "VALUES ('g', 'old-late', now() - interval '31 days')"
            )
        )


async def test_one_instance_purges_at_a_time(infra) -> None:
    """Instances of a service share its database: while one purges (holding the purge lock), the
    round of another skips, and it purges once the lock is free."""
    await _seed(infra, old=3, recent=0)
    runtime = ServiceRuntime(infra.settings(inbox_retention_days=30), run_relay=False)
    key = "hashtextextended('recall_alerts.inbox_purge', 0)"
    async with infra.engine.connect() as other_instance:
        await other_instance.execute(text(f"SELECT pg_advisory_lock({key})"))
        assert await runtime.purge_inbox() == 0
        assert await infra.scalar("SELECT count(*) FROM inbox") == 3
        await other_instance.execute(text(f"SELECT pg_advisory_unlock({key})"))
    try:
        assert await runtime.purge_inbox() == 3
    finally:
        await runtime.engine.dispose()
