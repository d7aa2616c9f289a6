"""PostgreSQL stopped for 30 s while the services consume a few thousand events: nothing is lost,
nothing applied twice, no dead letter, and readiness tells the operator why the services stalled."""

from __future__ import annotations

import asyncio
import time

import pytest
from system import SERVICE_NAMES, System

pytestmark = [pytest.mark.reliability, pytest.mark.integration]

CUSTOMERS = 1500
OUTAGE_S = 30


async def test_a_database_outage_is_waited_out(system: System) -> None:
    """A recall is live; orders for 1,500 of its customers stream in (the matcher raises an alert
    per order, then customer-api, the notifier, refund-logistics and the emails follow). A third of
    the way in, with alerts flowing, PostgreSQL stops for 30 s while the rest of the orders arrive.

    Old behaviour caught: the runner retried a record 5 times over ~3 s, then dead-lettered it and
    committed its offset, so after the outage customers had no alert (an ``order.placed.v1``
    dead-lettered in purchase-matcher) or an alert but no email, dead letters sat on the topics,
    and every /readyz was 200 again while nothing retried them.
    """
    cohort = system.cohort(CUSTOMERS)
    letters_before = await system.dead_letters()
    waits_before = await system.metric(
        "purchase-matcher", "consumer_infrastructure_waits_total", cause="database"
    )
    rest = await system.alerts_flowing(cohort)

    await asyncio.to_thread(system.postgres.stop)
    down_at = time.monotonic()
    publishing = asyncio.create_task(system.publish(rest, per_second=100))
    during: dict[str, tuple[int, dict]] = {}
    while time.monotonic() - down_at < OUTAGE_S:
        for name in SERVICE_NAMES:
            status, body = await system.readyz(name)
            if name not in during or "waiting out" in body["checks"].get("consumers", ""):
                during[name] = (status, body)
        await asyncio.sleep(1)
    await publishing
    await asyncio.to_thread(system.postgres.start)
    outage = time.monotonic() - down_at

    # During the outage every service said it was not ready and named the database; the matcher,
    # with orders waiting, also named the slot (partitions) waiting it out.
    for name, (status, body) in during.items():
        assert status == 503, f"{name}: {body}"
        assert body["checks"]["database"].startswith("unreachable"), f"{name}: {body}"
    matcher = during["purchase-matcher"][1]["checks"]
    assert "slot " in matcher["consumers"] and "waiting out" in matcher["consumers"], matcher

    got = await system.applied_once(cohort, within=150)
    assert outage >= OUTAGE_S and got["customer-api alerts"] == CUSTOMERS

    letters = await system.new_dead_letters(letters_before)
    assert {name: len(recs) for name, recs in letters.items()} == dict.fromkeys(SERVICE_NAMES, 0)
    await system.all_ready()
    waits = await system.metric(
        "purchase-matcher", "consumer_infrastructure_waits_total", cause="database"
    )
    assert waits > waits_before
