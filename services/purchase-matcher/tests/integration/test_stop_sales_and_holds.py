"""Stop-sales and shipment holds over real Kafka and PostgreSQL: listings arrive on
catalog.listings.v1, recalls on recalls.v1, orders on orders.v1, and what the matcher announces is
read back from stop_sales.v1 and shipment_holds.v1."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from recall_shared import events as ev
from recall_shared.topics import SHIPMENT_HOLDS, STOP_SALES

pytestmark = pytest.mark.integration

GTIN = "00012345678905"


async def listed(matcher: Any, *listings: ev.ListingUpdated) -> None:
    for listing in listings:
        await matcher.send(listing)
    await matcher.catalog_settled()


class Seen:
    """What a topic said since the last look."""

    def __init__(self, matcher: Any, spec: Any) -> None:
        self.matcher, self.spec, self.ids = matcher, spec, set[str]()

    async def new(self) -> list[ev.Event]:
        fresh = [(i, e) for i, e in await self.matcher.announced(self.spec) if i not in self.ids]
        self.ids |= {i for i, _ in fresh}
        return [e for _, e in fresh]


def stop_sales(events: list[ev.Event]) -> set[tuple]:
    return {
        ("declared", e.product_id, e.seller_id, e.tier)
        if isinstance(e, ev.StopSaleDeclared)
        else ("lifted", e.product_id, e.seller_id, e.reason)  # type: ignore[attr-defined]
        for e in events
    }


async def test_publication_stops_the_sale_of_exactly_the_listings_it_reaches(matcher, build):
    n = build.new_id
    kettle, parent, v1, v2, other_gtin, unrelated, scoped = (n("p") for _ in range(7))
    a, b, c, d = (n("seller") for _ in range(4))
    await listed(
        matcher,
        ev.ListingUpdated(product_id=kettle, title="Kettle", seller_ids=[a, b]),
        ev.ListingUpdated(product_id=parent, title="Heater", seller_ids=[]),
        ev.ListingUpdated(
            product_id=v1, title="Heater red", parent_product_id=parent, seller_ids=[a]
        ),
        ev.ListingUpdated(
            product_id=v2, title="Heater blue", parent_product_id=parent, seller_ids=[a, c]
        ),
        # another product carrying the recalled GTIN, in another spelling
        ev.ListingUpdated(
            product_id=other_gtin, title="Kettle B", gtins=["0-12345-67890-5"], seller_ids=[d]
        ),
        ev.ListingUpdated(product_id=unrelated, title="Lamp", seller_ids=[a, b]),
        ev.ListingUpdated(product_id=scoped, title="Toaster", seller_ids=[a, b]),
    )
    seen = Seen(matcher, STOP_SALES)
    recall_id, seller_recall = n("rc"), n("rc")
    # Not seller-scoped (an operator's recall): every seller's listing; variants as recall-intake
    # expands them (parent and known variants among product_ids).
    rule = ev.ScopeRule(
        product_ids=[kettle, parent, v1, v2], parent_product_ids=[parent], gtins=[GTIN]
    )
    await matcher.send_and_settle(
        ev.RecallPublished(recall=build.snapshot(recall_id, rule, seller_id=None)),
        ev.RecallPublished(
            recall=build.snapshot(
                seller_recall,
                ev.ScopeRule(product_ids=[scoped], seller_ids=[a]),
                seller_id=a,
            )
        ),
    )
    first = await seen.new()
    assert stop_sales(first) == {
        ("declared", kettle, a, "confirmed"),
        ("declared", kettle, b, "confirmed"),
        ("declared", v1, a, "confirmed"),
        ("declared", v2, a, "confirmed"),
        ("declared", v2, c, "confirmed"),
        ("declared", other_gtin, d, "confirmed"),
        ("declared", scoped, a, "confirmed"),  # the seller's recall: its own listing only
    }
    assert {e.recall_id for e in first if e.product_id == scoped} == {seller_recall}  # type: ignore[attr-defined]

    # A variant listed after publication is stopped through its parent
    late, e = n("p"), n("seller")
    await listed(
        matcher,
        ev.ListingUpdated(
            product_id=late, title="Heater green", parent_product_id=parent, seller_ids=[e]
        ),
    )
    assert stop_sales(await seen.new()) == {("declared", late, e, "confirmed")}

    # An amendment that drops the GTIN lifts that listing; the others are as they were (no repeat)
    amended = rule.model_copy(update={"gtins": []})
    await matcher.send_and_settle(
        ev.RecallAmended(recall=build.snapshot(recall_id, amended, version=2, seller_id=None))
    )
    assert stop_sales(await seen.new()) == {("lifted", other_gtin, d, "out_of_scope")}

    # A seller that no longer lists the product: its stop-sale is lifted
    await listed(matcher, ev.ListingUpdated(product_id=kettle, title="Kettle", seller_ids=[a]))
    assert stop_sales(await seen.new()) == {("lifted", kettle, b, "no_longer_listed")}

    # Closing lifts every stop-sale of that recall, and only those
    closed = build.snapshot(recall_id, amended, version=2, seller_id=None)
    await matcher.send_and_settle(ev.RecallClosed(recall=closed, closed_at=datetime.now(UTC)))
    assert stop_sales(await seen.new()) == {
        ("lifted", kettle, a, "recall_closed"),
        ("lifted", v1, a, "recall_closed"),
        ("lifted", v2, a, "recall_closed"),
        ("lifted", v2, c, "recall_closed"),
        ("lifted", late, e, "recall_closed"),
    }
    ids = [i for i, _ in await matcher.announced(STOP_SALES)]
    assert len(ids) == len(set(ids))


def holds(events: list[ev.Event]) -> set[tuple]:
    return {
        ("held", e.line_id, e.tier, tuple(e.unknown_attributes))
        if isinstance(e, ev.ShipmentHoldDeclared)
        else ("released", e.line_id, e.reason)  # type: ignore[attr-defined]
        for e in events
    }


async def test_lines_not_yet_shipped_are_held_and_released(matcher, build):
    n = build.new_id
    product, customer, recall_id = n("p"), n("cust"), n("rc")
    order = build.order(customer, product, product, product)
    a, b, c = (line.line_id for line in order.lines)
    shipped = ev.OrderLineShipped(
        order_id=order.order_id,
        customer_id=customer,
        line_id=c,
        shipped_at=datetime.now(UTC),
    )
    await matcher.send_and_settle(order, shipped)
    seen = Seen(matcher, SHIPMENT_HOLDS)
    rule = ev.ScopeRule(product_ids=[product])
    await matcher.send_and_settle(ev.RecallPublished(recall=build.snapshot(recall_id, rule)))
    assert holds(await seen.new()) == {("held", a, "confirmed", ()), ("held", b, "confirmed", ())}

    cancelled = ev.OrderCancelled(
        order_id=order.order_id, customer_id=customer, line_ids=[b], cancelled_at=datetime.now(UTC)
    )
    late = build.order(customer, product, product, placed_at=datetime.now(UTC))
    await matcher.send_and_settle(cancelled, late)
    d, e = (line.line_id for line in late.lines)
    assert holds(await seen.new()) == {
        ("released", b, "cancelled"),
        ("held", d, "confirmed", ()),
        ("held", e, "confirmed", ()),
    }

    # Narrowed to a lot: the lines awaiting shipment may or may not be in it
    by_lot = ev.ScopeRule(product_ids=[product], lots=ev.CodeRule(values=["L1"]))
    await matcher.send_and_settle(
        ev.RecallAmended(recall=build.snapshot(recall_id, by_lot, version=2))
    )
    assert holds(await seen.new()) == {
        ("held", a, "possibly_affected", ("lot",)),
        ("held", d, "possibly_affected", ("lot",)),
        ("held", e, "possibly_affected", ("lot",)),
    }

    # The warehouse read the lot of one: another one, so its hold is released; another line left
    # without its lot being read (still possibly in scope)
    await matcher.send_and_settle(
        ev.OrderLineShipped(
            order_id=order.order_id,
            customer_id=customer,
            line_id=a,
            shipped_at=datetime.now(UTC),
            lot="L9",
        ),
        ev.OrderLineShipped(
            order_id=late.order_id, customer_id=customer, line_id=e, shipped_at=datetime.now(UTC)
        ),
    )
    assert holds(await seen.new()) == {("released", a, "out_of_scope"), ("released", e, "shipped")}

    closed = build.snapshot(recall_id, by_lot, version=2)
    await matcher.send_and_settle(ev.RecallClosed(recall=closed, closed_at=datetime.now(UTC)))
    assert holds(await seen.new()) == {("released", d, "recall_closed")}
