"""The matcher through Kafka: orders.v1 and recalls.v1 in, alerts.v1 out, and only the
difference."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from purchase_matcher.domain import alert_id_for
from recall_shared import events as ev

pytestmark = pytest.mark.integration


def by_type(records, type_: str):
    return [r for r in records if r.type == type_]


async def test_published_recall_raises_one_alert_per_affected_customer(matcher, build) -> None:
    rid = build.new_id("rc")
    kettle, kettle_v2, toaster = (
        build.new_id("kettle"),
        build.new_id("kettle-v2"),
        build.new_id("toaster"),
    )
    alice, bob, carol, dave, erin = (
        build.new_id(n) for n in ("alice", "bob", "carol", "dave", "erin")
    )

    alice_1 = build.order(alice, kettle, toaster, quantity=2)
    alice_2 = build.order(alice, kettle_v2)  # a repeat purchase of the recalled kind: same alert
    bob_1 = build.order(bob, kettle, business_account_admin_id="bob-admin")
    carol_1 = build.order(carol, toaster)  # bought nothing recalled
    dave_1 = build.order(dave, kettle)  # cancelled before the recall
    erin_1 = build.order(erin, kettle, quantity=2)  # returned everything
    await matcher.send_and_settle(alice_1, alice_2, bob_1, carol_1, dave_1, erin_1)
    now = datetime.now(UTC)
    await matcher.send_and_settle(
        ev.OrderCancelled(order_id=dave_1.order_id, customer_id=dave, cancelled_at=now),
        ev.OrderLineReturned(
            order_id=erin_1.order_id,
            customer_id=erin,
            line_id=erin_1.lines[0].line_id,
            quantity=2,
            returned_at=now,
        ),
    )
    assert await matcher.alerts() == []  # no recall yet: nothing to say

    recall = build.snapshot(
        rid, ev.ScopeRule(product_ids=[kettle]), ev.ScopeRule(product_ids=[kettle_v2])
    )
    await matcher.send_and_settle(ev.RecallPublished(recall=recall))

    records = await matcher.alerts()
    assert [r.type for r in records] == ["alert.raised.v1"] * 2
    raised = {r.key: r.event.alert for r in records}
    assert set(raised) == {alice, bob}  # keyed by customer id; carol, dave and erin are not told
    a = raised[alice]
    assert a.alert_id == alert_id_for(rid, alice) and a.alert_version == 1 and a.recall_version == 1
    assert a.recall_id == rid and a.tier == "confirmed" and a.recall.title == recall.content.title
    assert sorted((ln.order_id, ln.product_id, ln.units) for ln in a.lines) == sorted(
        [(alice_1.order_id, kettle, 2), (alice_2.order_id, kettle_v2, 1)]
    )
    assert raised[bob].business_account_admin_id == "bob-admin"
    assert [ln.line_id for ln in raised[bob].lines] == [bob_1.lines[0].line_id]
    assert all(r.event.alert.alert_id == alert_id_for(rid, r.key) for r in records)
    assert await matcher.scalar("SELECT count(*) FROM alerts WHERE status = 'open'") == 2


async def test_amendment_emits_only_the_difference(matcher, build) -> None:
    rid = build.new_id("rc")
    p1, p2, p3 = build.new_id("p1"), build.new_id("p2"), build.new_id("p3")
    keep, drop, gain, grow = (build.new_id(n) for n in ("keep", "drop", "gain", "grow"))
    grow_1 = build.order(grow, p1)
    grow_2 = build.order(grow, p3)
    await matcher.send_and_settle(
        build.order(keep, p2), build.order(drop, p1), build.order(gain, p3), grow_1, grow_2
    )
    published_at = datetime.now(UTC)
    v1 = build.snapshot(rid, ev.ScopeRule(product_ids=[p1, p2]), published_at=published_at)
    await matcher.send_and_settle(ev.RecallPublished(recall=v1))
    first = await matcher.alerts()
    assert sorted(r.key for r in first) == sorted([keep, drop, grow])
    assert {r.type for r in first} == {"alert.raised.v1"}

    # version 2: p1 is out (narrower), p3 is in (wider), p2 unchanged
    v2 = build.snapshot(
        rid, ev.ScopeRule(product_ids=[p2, p3]), version=2, published_at=published_at
    )
    await matcher.send_and_settle(ev.RecallAmended(recall=v2))
    new = await matcher.alerts_after(first)
    kinds = {(r.key, r.type) for r in new}

    # newly reached: raised
    assert (gain, "alert.raised.v1") in kinds
    gained = next(r.event.alert for r in new if r.key == gain)
    assert gained.alert_version == 1 and gained.recall_version == 2
    # no longer reached: withdrawn, visibly
    withdrawn = [r.event for r in new if r.key == drop]
    assert [r.type for r in new if r.key == drop] == ["alert.withdrawn.v1"]
    assert withdrawn[0].alert_id == alert_id_for(rid, drop) and withdrawn[0].alert_version == 2
    assert withdrawn[0].recall_version == 2
    # reached by other lines now: the same alert, a new version, with the new line set
    grown = [r for r in new if r.key == grow]
    assert [r.type for r in grown] == ["alert.updated.v1"]
    assert grown[0].event.alert.alert_version == 2
    assert [ln.line_id for ln in grown[0].event.alert.lines] == [grow_2.lines[0].line_id]
    # unchanged scope: no raise, no withdrawal and no new alert version (so no new notice is due)
    unchanged = [r for r in new if r.key == keep]
    assert all(r.type == "alert.updated.v1" and r.event.alert.alert_version == 1 for r in unchanged)
    assert not any(r.type in ("alert.raised.v1", "alert.withdrawn.v1") for r in unchanged)
    assert Counter(r.type for r in new)["alert.raised.v1"] == 1
    assert Counter(r.type for r in new)["alert.withdrawn.v1"] == 1

    statuses = {
        c: await matcher.scalar("SELECT status FROM alerts WHERE customer_id = :c", c=c)
        for c in (keep, drop, gain, grow)
    }
    assert statuses == {keep: "open", drop: "withdrawn", gain: "open", grow: "open"}

    # an older version arriving late changes nothing
    before = len(await matcher.alerts())
    await matcher.send_and_settle(ev.RecallPublished(recall=v1))
    assert len(await matcher.alerts()) == before
    assert await matcher.scalar("SELECT version FROM recalls WHERE recall_id = :r", r=rid) == 2


async def test_redelivered_and_republished_recall_events_emit_nothing_new(matcher, build) -> None:
    rid = build.new_id("rc")
    product = build.new_id("p")
    customers = [build.new_id("c") for _ in range(3)]
    await matcher.send_and_settle(*(build.order(c, product) for c in customers))
    published = ev.RecallPublished(recall=build.snapshot(rid, ev.ScopeRule(product_ids=[product])))
    ce_id = build.new_id("ce")
    await matcher.send(published, event_id=ce_id)
    await matcher.settled()
    first = await matcher.alerts()
    assert len(first) == 3 and {r.type for r in first} == {"alert.raised.v1"}

    await matcher.send(published, event_id=ce_id)  # a redelivery: same ce_id
    await matcher.send(published)  # the same version re-published: new ce_id
    await matcher.settled()
    assert await matcher.alerts_after(first) == []
    assert len(await matcher.alerts()) == len(first)
    assert (
        await matcher.scalar("SELECT count(*) FROM inbox") == 5
    )  # 3 orders + 2 distinct recall events
    assert await matcher.scalar("SELECT max(alert_version) FROM alerts") == 1


async def test_late_order_for_a_recalled_product_alerts_and_flags_the_sale(matcher, build) -> None:
    rid = build.new_id("rc")
    product, other = build.new_id("p"), build.new_id("other")
    early, late, unrelated, backfilled = (
        build.new_id(n) for n in ("early", "late", "unrelated", "backfill")
    )
    published_at = datetime.now(UTC) - timedelta(hours=1)
    await matcher.send_and_settle(
        build.order(early, product, placed_at=published_at - timedelta(days=3))
    )
    await matcher.send_and_settle(
        ev.RecallPublished(
            recall=build.snapshot(
                rid, ev.ScopeRule(product_ids=[product]), published_at=published_at
            )
        )
    )
    first = await matcher.alerts()
    assert [(r.key, r.type) for r in first] == [(early, "alert.raised.v1")]

    late_order = build.order(
        late, product, other, placed_at=published_at + timedelta(minutes=30), seller_id="seller-9"
    )
    # an order placed before publication that only reaches us now (a backfill) is matched but is no
    # incident
    old_order = build.order(backfilled, product, placed_at=published_at - timedelta(days=1))
    await matcher.send_and_settle(
        late_order, old_order, build.order(unrelated, other, placed_at=datetime.now(UTC))
    )

    new = await matcher.alerts_after(first)
    assert sorted((r.key, r.type) for r in new) == sorted(
        [
            (late, "alert.raised.v1"),
            (late, "alert.sale_after_recall_detected.v1"),
            (backfilled, "alert.raised.v1"),
        ]
    )
    raised = next(r.event.alert for r in new if r.key == late and r.type == "alert.raised.v1")
    assert [ln.line_id for ln in raised.lines] == [
        late_order.lines[0].line_id
    ]  # not the unrelated line
    incident = next(r.event for r in new if r.type == "alert.sale_after_recall_detected.v1")
    assert incident.recall_id == rid and incident.order_id == late_order.order_id
    assert incident.line_id == late_order.lines[0].line_id and incident.product_id == product
    assert incident.seller_id == "seller-9" and incident.placed_at == late_order.placed_at
    assert incident.recall_published_at == published_at


async def test_late_orders_find_their_recalls_by_gtin_and_model_number_not_by_scanning(
    matcher, build
) -> None:
    """An order event looks up the recalls naming its lines' identifiers (recall_identifiers); a
    recall found by a GTIN in another spelling or a model number in another spelling alerts, a
    closed one not."""
    by_gtin, by_model, closed_rid = (
        build.new_id("rc-gtin"),
        build.new_id("rc-model"),
        build.new_id("rc-closed"),
    )
    gtin_buyer, model_buyer, closed_buyer = (
        build.new_id(n) for n in ("gtin-buyer", "model-buyer", "closed-buyer")
    )
    published_at = datetime.now(UTC) - timedelta(hours=1)
    closed_product = build.new_id("closed-product")
    await matcher.send_and_settle(
        ev.RecallPublished(
            recall=build.snapshot(
                by_gtin, ev.ScopeRule(gtins=["00011110911285"]), published_at=published_at
            )
        ),
        ev.RecallPublished(
            recall=build.snapshot(
                by_model, ev.ScopeRule(model_numbers=["HX-200/B"]), published_at=published_at
            )
        ),
        ev.RecallPublished(
            recall=build.snapshot(
                closed_rid, ev.ScopeRule(product_ids=[closed_product]), published_at=published_at
            )
        ),
    )
    await matcher.send_and_settle(
        ev.RecallClosed(
            recall=build.snapshot(
                closed_rid, ev.ScopeRule(product_ids=[closed_product]), published_at=published_at
            ),
            closed_at=datetime.now(UTC),
        )
    )
    assert (
        await matcher.scalar(
            "SELECT count(*) FROM recall_identifiers "
            f"WHERE recall_id IN ('{by_gtin}', '{by_model}', '{closed_rid}')"
        )
        == 2
    )

    now = datetime.now(UTC)
    gtin_order = build.order(gtin_buyer, build.new_id("p"), placed_at=now)
    gtin_order = gtin_order.model_copy(
        update={"lines": [gtin_order.lines[0].model_copy(update={"gtin": "0-11110-91128-5"})]}
    )
    model_order = build.order(model_buyer, build.new_id("p"), placed_at=now)
    model_order = model_order.model_copy(
        update={"lines": [model_order.lines[0].model_copy(update={"model_number": "hx 200 b"})]}
    )
    await matcher.send_and_settle(
        gtin_order, model_order, build.order(closed_buyer, closed_product, placed_at=now)
    )

    records = await matcher.alerts()
    raised = {(r.key, r.event.alert.recall_id) for r in by_type(records, "alert.raised.v1")}
    assert raised == {(gtin_buyer, by_gtin), (model_buyer, by_model)}
    assert sorted(
        r.event.recall_id for r in by_type(records, "alert.sale_after_recall_detected.v1")
    ) == sorted([by_gtin, by_model])


async def test_late_sale_with_realistic_long_ids_is_flagged_not_dead_lettered(
    matcher, build
) -> None:
    """Upstream ids are often UUIDs: the incident's event id must still fit the outbox."""
    rid, product, customer = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    published_at = datetime.now(UTC) - timedelta(hours=1)
    await matcher.send_and_settle(
        ev.RecallPublished(
            recall=build.snapshot(
                rid, ev.ScopeRule(product_ids=[product]), published_at=published_at
            )
        )
    )
    order = build.order(customer, product, order_id=str(uuid.uuid4()), placed_at=datetime.now(UTC))
    order = order.model_copy(
        update={"lines": [order.lines[0].model_copy(update={"line_id": str(uuid.uuid4())})]}
    )
    await matcher.send_and_settle(order)
    records = await matcher.alerts()
    assert sorted(r.type for r in records) == [
        "alert.raised.v1",
        "alert.sale_after_recall_detected.v1",
    ]
    incident = next(r.event for r in records if r.type == "alert.sale_after_recall_detected.v1")
    assert incident.line_id == order.lines[0].line_id and incident.recall_id == rid


async def test_order_gtins_in_everyday_spellings_are_matched_not_dead_lettered(
    matcher, build
) -> None:
    """Order history carries UPCs as "0-11110-91128-5" or 12 digits; recalls carry GTIN-14."""
    rid = build.new_id("rc")
    hyphenated, upc12, ean13 = (build.new_id(n) for n in ("hyphen", "upc", "ean"))
    orders = []
    for customer, gtin in (
        (hyphenated, "0-11110-91128-5"),
        (upc12, "011110911285"),
        (ean13, "4006381333931"),
    ):
        order = build.order(customer, build.new_id("p"))
        orders.append(
            order.model_copy(update={"lines": [order.lines[0].model_copy(update={"gtin": gtin})]})
        )
    await matcher.send_and_settle(*orders)
    await matcher.send_and_settle(
        ev.RecallPublished(
            recall=build.snapshot(rid, ev.ScopeRule(gtins=["00011110911285", "04006381333931"]))
        )
    )
    raised = {r.key: r.event.alert for r in await matcher.alerts()}
    assert set(raised) == {hyphenated, upc12, ean13}
    assert raised[hyphenated].lines[0].gtin == "00011110911285"


async def test_closed_recall_closes_open_alerts_only(matcher, build) -> None:
    rid = build.new_id("rc")
    p1, p2 = build.new_id("p1"), build.new_id("p2")
    a, b, c = (build.new_id(n) for n in ("a", "b", "c"))
    await matcher.send_and_settle(build.order(a, p1), build.order(b, p1), build.order(c, p2))
    v1 = build.snapshot(rid, ev.ScopeRule(product_ids=[p1, p2]))
    await matcher.send_and_settle(ev.RecallPublished(recall=v1))
    v2 = build.snapshot(
        rid, ev.ScopeRule(product_ids=[p1]), version=2, published_at=v1.published_at
    )
    await matcher.send_and_settle(ev.RecallAmended(recall=v2))  # c withdrawn
    before = await matcher.alerts()
    assert (c, "alert.withdrawn.v1") in {(r.key, r.type) for r in before}

    closed_at = datetime.now(UTC)
    await matcher.send_and_settle(ev.RecallClosed(recall=v2, closed_at=closed_at))
    new = await matcher.alerts_after(before)
    assert sorted((r.key, r.type) for r in new) == sorted(
        [(a, "alert.closed.v1"), (b, "alert.closed.v1")]
    )
    for r in new:
        assert r.event.alert_id == alert_id_for(rid, r.key) and r.event.recall_id == rid
        assert r.event.closed_at == closed_at

    # a closed recall stays closed: a late amendment or a new order for it does nothing
    total = len(await matcher.alerts())
    v3 = build.snapshot(
        rid, ev.ScopeRule(product_ids=[p1, p2]), version=3, published_at=v1.published_at
    )
    await matcher.send_and_settle(
        ev.RecallAmended(recall=v3), build.order(build.new_id("d"), p1, placed_at=datetime.now(UTC))
    )
    await matcher.send_and_settle(ev.RecallClosed(recall=v2, closed_at=closed_at))
    assert len(await matcher.alerts()) == total
    assert await matcher.scalar("SELECT count(*) FROM alerts WHERE status = 'closed'") == 2


async def test_returns_and_cancellations_after_the_alert_update_or_withdraw_it(
    matcher, build
) -> None:
    rid = build.new_id("rc")
    product = build.new_id("p")
    partial, whole, cancel = (build.new_id(n) for n in ("partial", "whole", "cancel"))
    partial_order = build.order(partial, product, quantity=3)
    whole_order = build.order(whole, product, quantity=1)
    cancel_order = build.order(cancel, product)
    await matcher.send_and_settle(partial_order, whole_order, cancel_order)
    await matcher.send_and_settle(
        ev.RecallPublished(recall=build.snapshot(rid, ev.ScopeRule(product_ids=[product])))
    )
    first = await matcher.alerts()
    assert len(first) == 3

    now = datetime.now(UTC)
    await matcher.send_and_settle(
        ev.OrderLineReturned(
            order_id=partial_order.order_id,
            customer_id=partial,
            line_id=partial_order.lines[0].line_id,
            quantity=1,
            returned_at=now,
        ),
        ev.OrderLineReturned(
            order_id=whole_order.order_id,
            customer_id=whole,
            line_id=whole_order.lines[0].line_id,
            quantity=1,
            returned_at=now,
        ),
        ev.OrderCancelled(order_id=cancel_order.order_id, customer_id=cancel, cancelled_at=now),
    )
    new = {r.key: r for r in await matcher.alerts_after(first)}
    assert {k: r.type for k, r in new.items()} == {
        partial: "alert.updated.v1",
        whole: "alert.withdrawn.v1",
        cancel: "alert.withdrawn.v1",
    }
    assert (
        new[partial].event.alert.alert_version == 2 and new[partial].event.alert.lines[0].units == 2
    )


async def test_a_return_or_cancellation_the_line_cannot_hold_is_dead_lettered_unapplied(
    matcher, build
) -> None:
    """Returning 99 units of a line of 1, or cancelling a line already returned in full, contradicts
    what the index knows: the event is dead-lettered as rejected, with the reason, and changes
    nothing (the alert stays open). A fitting return after it is applied as usual."""
    rid = build.new_id("rc")
    product = build.new_id("p")
    one, two = build.new_id("one"), build.new_id("two")
    one_order, two_order = build.order(one, product), build.order(two, product, quantity=2)
    await matcher.send_and_settle(one_order, two_order)
    await matcher.send_and_settle(
        ev.RecallPublished(recall=build.snapshot(rid, ev.ScopeRule(product_ids=[product])))
    )
    first = await matcher.alerts()
    now = datetime.now(UTC)
    two_line = two_order.lines[0].line_id
    too_many = ev.OrderLineReturned(
        order_id=one_order.order_id,
        customer_id=one,
        line_id=one_order.lines[0].line_id,
        quantity=99,
        returned_at=now,
    )
    returned = ev.OrderLineReturned(
        order_id=two_order.order_id, customer_id=two, line_id=two_line, quantity=2, returned_at=now
    )
    cancel_returned = ev.OrderCancelled(
        order_id=two_order.order_id, customer_id=two, line_ids=[two_line], cancelled_at=now
    )
    ids = await matcher.send_and_settle(too_many, returned, cancel_returned)
    matcher.expected_dead_letters = {ids[0], ids[2]}
    letters = await matcher.dead_letters()
    reasons = {
        dict(r.headers)["ce_id"].decode(): dict(r.headers)["dlq_error"].decode() for r in letters
    }
    assert set(reasons) == {ids[0], ids[2]}
    assert {dict(r.headers)["dlq_reason"] for r in letters} == {b"rejected"}
    assert "return of 99 units" in reasons[ids[0]] and "1 of 1 remain" in reasons[ids[0]]
    assert "all 2 units were returned" in reasons[ids[2]]
    assert (
        await matcher.scalar(
            "SELECT returned_quantity FROM purchase_lines WHERE line_id = :l",
            l=one_order.lines[0].line_id,
        )
        == 0
    )
    new = {r.key: r.type for r in await matcher.alerts_after(first)}
    assert new == {two: "alert.withdrawn.v1"}  # only the return that fits took effect


async def test_matches_endpoint_reports_counts(matcher, build) -> None:
    rid = build.new_id("rc")
    p1, p2 = build.new_id("p1"), build.new_id("p2")
    a, b, c = (build.new_id(n) for n in ("a", "b", "c"))
    await matcher.send_and_settle(
        build.order(a, p1), build.order(a, p1), build.order(b, p1, p2), build.order(c, p2)
    )
    v1 = build.snapshot(rid, ev.ScopeRule(product_ids=[p1, p2]))
    await matcher.send_and_settle(ev.RecallPublished(recall=v1))
    op = await matcher.operator()

    resp = await matcher.client.get(f"/v1/recalls/{rid}/matches", headers=op)
    assert resp.status_code == 200
    assert resp.json() == {
        "recall_id": rid,
        "alerts_open": 3,
        "alerts_withdrawn": 0,
        "alerts_closed": 0,
        "order_lines_affected": 5,
    }

    await matcher.send_and_settle(
        ev.RecallAmended(
            recall=build.snapshot(
                rid, ev.ScopeRule(product_ids=[p1]), version=2, published_at=v1.published_at
            )
        )
    )
    resp = await matcher.client.get(f"/v1/recalls/{rid}/matches", headers=op)
    assert resp.json() == {
        "recall_id": rid,
        "alerts_open": 2,
        "alerts_withdrawn": 1,
        "alerts_closed": 0,
        "order_lines_affected": 3,
    }

    await matcher.send_and_settle(
        ev.RecallClosed(
            recall=build.snapshot(rid, ev.ScopeRule(product_ids=[p1]), version=2),
            closed_at=datetime.now(UTC),
        )
    )
    resp = await matcher.client.get(f"/v1/recalls/{rid}/matches", headers=op)
    assert resp.json() == {
        "recall_id": rid,
        "alerts_open": 0,
        "alerts_withdrawn": 1,
        "alerts_closed": 2,
        "order_lines_affected": 0,
    }

    unknown = await matcher.client.get("/v1/recalls/no-such-recall/matches", headers=op)
    assert unknown.status_code == 404 and unknown.json()["message"] == "recall not found"


async def test_a_gift_and_its_recipient_reach_the_alert(matcher, build) -> None:
    """orders.v1's gift flag and recipient are carried to the alert's lines (issue 15): the
    notifier asks the purchaser to pass the notice on, and tells the recipient."""
    rid, kettle, fran = build.new_id("rc"), build.new_id("kettle"), build.new_id("fran")
    recipient = ev.GiftRecipient(name="Gil", email="gil@example.test", locale="de")
    gift = build.order(fran, kettle).model_copy(
        update={"is_gift": True, "gift_recipient": recipient}
    )
    own = build.order(fran, kettle)
    await matcher.send_and_settle(gift, own)
    await matcher.send_and_settle(
        ev.RecallPublished(recall=build.snapshot(rid, ev.ScopeRule(product_ids=[kettle])))
    )
    (record,) = [r for r in await matcher.alerts() if r.key == fran]
    lines = {ln.order_id: ln for ln in record.event.alert.lines}
    assert (lines[gift.order_id].is_gift, lines[gift.order_id].gift_recipient) == (True, recipient)
    assert (lines[own.order_id].is_gift, lines[own.order_id].gift_recipient) == (False, None)
