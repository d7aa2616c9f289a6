"""A run of orders in one batch: every order's lines go in at once and each recall they reach is
reconciled once for all of the run's customers, not once per order (after a database outage the
orders that waited come as full batches: one pass each took the matcher minutes on a loaded
machine)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from recall_shared import envelope
from recall_shared import events as ev
from recall_shared.consumer import Record
from recall_shared.topics import ORDERS

pytestmark = pytest.mark.integration


async def test_a_batch_of_orders_raises_one_alert_per_customer_and_flags_late_sales(
    matcher, build
) -> None:
    rid = build.new_id("rc")
    product, other = build.new_id("p"), build.new_id("other")
    published_at = datetime.now(UTC) - timedelta(hours=1)
    await matcher.send_and_settle(
        ev.RecallPublished(
            recall=build.snapshot(
                rid, ev.ScopeRule(product_ids=[product]), published_at=published_at
            )
        )
    )
    before = await matcher.alerts()
    twice, late, early, unrelated = (build.new_id(n) for n in ("twice", "late", "early", "none"))
    orders = [
        build.order(twice, product, placed_at=published_at - timedelta(days=2)),
        build.order(late, product, other, placed_at=published_at + timedelta(minutes=5)),
        build.order(unrelated, other, placed_at=published_at - timedelta(days=1)),
        build.order(twice, product, placed_at=published_at - timedelta(days=1)),
        build.order(early, product, placed_at=published_at - timedelta(days=9)),
    ]
    # The orders as one partition's batch, straight through the service's own runner (nothing on
    # Kafka for its background consumer to apply first).
    records = [
        Record(matcher.topic(ORDERS), 0, n, o.customer_id.encode(), env.data, env.headers())
        for n, o in enumerate(orders)
        for env in [envelope.wrap(o, source="test")]
    ]
    runner = next(
        r for r in matcher.app.state.runtime.consumers if r.group.endswith("purchase-matcher")
    )
    assert await runner.process_batch(records) == {"applied": len(orders)}
    await matcher.settled()  # what went through the outbox (the incident) is out too

    new = await matcher.alerts_after(before)
    raised = {r.key: r.event.alert for r in new if r.type == "alert.raised.v1"}
    assert sorted(raised) == sorted([twice, late, early])
    # One event for the customer of two orders, carrying both lines: one pass, not two.
    assert not [r for r in new if r.type == "alert.updated.v1"]
    assert sorted(line.line_id for line in raised[twice].lines) == sorted(
        o.lines[0].line_id for o in orders if o.customer_id == twice
    )
    assert [line.line_id for line in raised[late].lines] == [orders[1].lines[0].line_id]
    incidents = [r.event for r in new if r.type == "alert.sale_after_recall_detected.v1"]
    assert [(i.customer_id, i.line_id) for i in incidents] == [(late, orders[1].lines[0].line_id)]
    lines = await matcher.scalar(
        "SELECT count(*) FROM purchase_lines WHERE customer_id = ANY(:c)",
        c=[twice, late, early, unrelated],
    )
    assert lines == sum(len(o.lines) for o in orders)
