"""An order and a recall applied at the same time, on two slots: neither may miss the other.

Under READ COMMITTED the recall's pass does not see an order line not yet committed, and the order's
re-check does not see a recall not yet committed, so both committed with no alert for the buyer (3
and 6 of 12 simultaneous publications in a reproduction). A pass now holds an advisory lock that
every re-check shares: the later of the two reads what the earlier committed."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from recall_shared import envelope
from recall_shared import events as ev

pytestmark = pytest.mark.integration


async def test_a_recall_published_while_an_order_is_applied_still_alerts_the_buyer(
    matcher, build
) -> None:
    rid, product, buyer = build.new_id("rc"), build.new_id("p"), build.new_id("buyer")
    runner = next(
        r for r in matcher.app.state.runtime.consumers if r.group.endswith("purchase-matcher")
    )
    on_order = runner.handlers["order.placed.v1"][1]
    on_recall = runner.handlers["recall.published.v1"][1]
    sessions = matcher.app.state.runtime.session_factory
    order = build.order(buyer, product, placed_at=datetime.now(UTC) - timedelta(days=3))
    published = ev.RecallPublished(recall=build.snapshot(rid, ev.ScopeRule(product_ids=[product])))

    async def publish() -> None:
        async with sessions() as session, session.begin():
            await on_recall(session, published, envelope.wrap(published, source="test"))

    async with sessions() as session, session.begin():
        await on_order(session, order, envelope.wrap(order, source="test"))
        publishing = asyncio.create_task(publish())
        await asyncio.sleep(1.0)
        waited_for_the_order = not publishing.done()
    await publishing

    assert waited_for_the_order, "the recall's pass ran beside an uncommitted order"
    open_alerts = await matcher.scalar(
        "SELECT count(*) FROM alerts WHERE recall_id = :r AND customer_id = :c AND status = 'open'",
        r=rid,
        c=buyer,
    )
    assert open_alerts == 1
