"""Remedy cases end to end through Kafka and PostgreSQL: refunds, labels, referrals, redeliveries.

A refund on destruction waits for the customer's photo (POST /v1/cases/{id}/proof), then pays."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from refund_logistics.handlers import case_id_for

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]


async def _setup(rls, kit, *, enrolled: bool = True, lines=((2, "19.99"),)):
    rc = kit.recall(enrolled=enrolled)
    a = kit.alert(rc, kit.new_customer(), lines=list(lines))
    await rls.publish(kit.published(rc))
    await rls.publish(kit.raised(a))
    return rc, a


async def test_refund_on_destruction_pays_the_price_paid_once(rls, kit) -> None:
    rc, a = await _setup(rls, kit, lines=((2, "19.99"), (1, "5.50")))
    req = kit.remedy_request(a, "refund_on_destruction")
    await rls.publish(req)
    case_id = case_id_for(req.request_id)

    waiting = await rls.wait_for_case(case_id, lambda c: c["waiting_for"] == "proof")
    assert waiting["state"] == "requested" and rls.payments.calls_for(case_id) == [], (
        "no refund without the photo"
    )
    r = await rls.submit_proof(case_id, a.customer_id)
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "refunded"
    assert (
        r.json()["proof"]["size"] == len(kit.photo_for(case_id))
        and r.json()["proof"]["content_type"] == "image/jpeg"
    )
    (stored,) = (
        await rls.sql("SELECT image FROM case_proof_images WHERE case_id = :c", c=case_id)
    )[0]
    assert bytes(stored) == kit.photo_for(case_id)

    events = await rls.wait_for_transitions(case_id, 2)
    (k1, e1, opened), (k2, e2, refunded) = events
    assert k1 == k2 == a.customer_id.encode()
    assert e1.subject == e2.subject == case_id
    assert e1.id != e2.id and all(len(e.id) <= 64 for e in (e1, e2)), (
        "event ids fit the inbox/outbox columns"
    )
    assert (opened["transition"], opened["from_state"], opened["state"]) == (
        "open",
        None,
        "requested",
    )
    assert (refunded["transition"], refunded["from_state"], refunded["state"]) == (
        "issue_refund",
        "requested",
        "refunded",
    )
    assert Decimal(str(refunded["refunded_amount"])) == Decimal("45.48")  # 2 x 19.99 + 1 x 5.50
    assert refunded["currency"] == "EUR"
    assert refunded["request_id"] == req.request_id and refunded["alert_id"] == a.alert_id
    assert refunded["seller_id"] == rc.seller_id and refunded["remedy"] == "refund_on_destruction"

    case = await rls.wait_for_case(case_id, lambda c: c["state"] == "refunded")
    assert Decimal(str(case["refunded_amount"])) == Decimal("45.48")
    assert case["waiting_for"] is None
    assert [(t["transition"], t["from_state"], t["to_state"]) for t in case["transitions"]] == [
        ("open", None, "requested"),
        ("issue_refund", "requested", "refunded"),
    ]
    refunds = rls.payments.refunds_for(case_id)
    assert sorted(r.amount for r in refunds) == [Decimal("5.50"), Decimal("39.98")]
    assert len(rls.payments.calls_for(case_id)) == 2  # one per line
    # The seller is billed what was paid on its behalf, plus the case fee.
    ledger = await rls.sql(
        "SELECT kind, amount, seller_id FROM seller_ledger WHERE case_id = :c ORDER BY kind",
        c=case_id,
    )
    assert [(k, amt, s) for k, amt, s in ledger] == [
        ("fee", Decimal("2.50"), rc.seller_id),
        ("refund_paid", Decimal("45.48"), rc.seller_id),
    ]


async def test_redelivered_remedy_request_never_refunds_twice(rls, kit) -> None:
    _, a = await _setup(rls, kit)
    req = kit.remedy_request(a)
    ce_id = await rls.publish(req)
    case_id = case_id_for(req.request_id)
    await rls.wait_for_case(case_id, lambda c: c["waiting_for"] == "proof")
    assert (await rls.submit_proof(case_id, a.customer_id)).status_code == 200
    await rls.wait_for_case(case_id, lambda c: c["state"] == "refunded")

    await rls.publish(req, event_id=ce_id)  # Kafka redelivery: same ce_id
    await rls.publish(req)  # customer-api re-emitting the same request: new ce_id, same request_id
    # A marker request of the same customer (same key, so the same partition of remedies.v1, behind
    # the repeats): when its case is done, the repeats have been handled.
    marker_rc = kit.recall()
    marker_alert = kit.alert(marker_rc, a.customer_id)
    await rls.publish(kit.published(marker_rc))
    await rls.publish(kit.raised(marker_alert))
    marker = kit.remedy_request(marker_alert)
    await rls.publish(marker)
    await rls.wait_for_case(case_id_for(marker.request_id), lambda c: c["waiting_for"] == "proof")
    assert (
        await rls.submit_proof(case_id, a.customer_id)
    ).status_code == 200  # the customer's retry, too

    assert len(rls.payments.refunds_for(case_id)) == 1
    assert len(rls.payments.calls_for(case_id)) == 1
    case = await rls.case(case_id)
    assert Decimal(str(case["refunded_amount"])) == Decimal("39.98")
    assert [t["transition"] for t in case["transitions"]] == ["open", "issue_refund"]
    await asyncio.sleep(0.5)
    assert [b["transition"] for _, _, b in await rls.transitions(case_id)] == [
        "open",
        "issue_refund",
    ]
    (count,) = (await rls.sql("SELECT count(*) FROM refunds WHERE case_id = :c", c=case_id))[0]
    assert count == 1


async def test_request_before_the_alert_waits_and_completes_when_the_alert_arrives(
    rls, kit
) -> None:
    rc = kit.recall()
    a = kit.alert(rc, kit.new_customer(), lines=[(1, "49.00")])
    await rls.publish(kit.published(rc))
    req = kit.remedy_request(a)
    await rls.publish(req)
    case_id = case_id_for(req.request_id)
    waiting = await rls.wait_for_case(case_id, lambda c: c["waiting_for"] == "alert")
    assert waiting["state"] == "requested"
    assert rls.payments.calls_for(case_id) == []

    await rls.publish(kit.raised(a))
    await rls.wait_for_case(case_id, lambda c: c["waiting_for"] == "proof")
    assert (await rls.submit_proof(case_id, a.customer_id)).status_code == 200
    case = await rls.wait_for_case(case_id, lambda c: c["state"] == "refunded")
    assert case["waiting_for"] is None
    assert Decimal(str(case["refunded_amount"])) == Decimal("49.00")
    events = await rls.wait_for_transitions(case_id, 2)
    assert [b["transition"] for _, _, b in events] == ["open", "issue_refund"]
    assert len(rls.payments.refunds_for(case_id)) == 1


async def test_a_case_that_missed_its_alerts_arrival_is_resumed_by_the_recovery_loop(
    rls, kit
) -> None:
    """Two partitions' race: the request's transaction read the alert as missing while the alert's
    own committed, each unseen by the other, so the case waits for an alert that is known. Played
    by writing the alert's row behind the consumer's back: only the recovery loop resumes it."""
    rc = kit.recall()
    a = kit.alert(rc, kit.new_customer(), lines=[(1, "49.00")])
    await rls.publish(kit.published(rc))
    req = kit.remedy_request(a)
    await rls.publish(req)
    case_id = case_id_for(req.request_id)
    await rls.wait_for_case(case_id, lambda c: c["waiting_for"] == "alert")

    engine = create_async_engine(rls.settings.database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO alerts (alert_id, customer_id, recall_id, alert_version, status,"
                    " lines, units) VALUES (:a, :c, :r, 1, 'open', CAST(:lines AS jsonb), 1)"
                ),
                {
                    "a": a.alert_id,
                    "c": a.customer_id,
                    "r": a.recall_id,
                    "lines": json.dumps([line.model_dump(mode="json") for line in a.lines]),
                },
            )
    finally:
        await engine.dispose()
    case = await rls.wait_for_case(case_id, lambda c: c["waiting_for"] == "proof")
    assert case["state"] == "requested"


async def test_request_before_the_recall_waits_for_the_recall(rls, kit) -> None:
    rc = kit.recall()
    a = kit.alert(rc, kit.new_customer())
    await rls.publish(kit.raised(a))
    req = kit.remedy_request(a)
    await rls.publish(req)
    case_id = case_id_for(req.request_id)
    await rls.wait_for_case(case_id, lambda c: c["waiting_for"] == "recall")
    await rls.publish(kit.published(rc))
    await rls.wait_for_case(case_id, lambda c: c["waiting_for"] == "proof")
    assert (await rls.submit_proof(case_id, a.customer_id)).status_code == 200
    case = await rls.wait_for_case(case_id, lambda c: c["state"] == "refunded")
    assert Decimal(str(case["refunded_amount"])) == Decimal("39.98")


async def test_recall_not_enrolled_is_referred_to_the_seller_with_the_contact(rls, kit) -> None:
    rc, a = await _setup(rls, kit, enrolled=False)
    req = kit.remedy_request(a)
    await rls.publish(req)
    case_id = case_id_for(req.request_id)
    events = await rls.wait_for_transitions(case_id, 2)
    referred = events[1][2]
    assert len(events[1][1].id) <= 64
    assert referred["transition"] == "refer_to_seller"
    assert referred["state"] == "referred_to_seller"
    assert rc.content.consumer_contact in referred["reason"]
    case = await rls.wait_for_case(case_id, lambda c: c["state"] == "referred_to_seller")
    assert rc.content.consumer_contact in case["reason"]
    assert Decimal(str(case["refunded_amount"])) == 0
    assert rls.payments.calls_for(case_id) == []


async def test_refund_with_return_issues_a_label_then_refunds_when_the_item_is_back(
    rls, kit
) -> None:
    _rc, a = await _setup(rls, kit)
    req = kit.remedy_request(a, "refund_with_return")
    await rls.publish(req)
    case_id = case_id_for(req.request_id)
    events = await rls.wait_for_transitions(case_id, 2)
    assert [(b["transition"], b["state"]) for _, _, b in events] == [
        ("open", "requested"),
        ("issue_label", "label_issued"),
    ]
    case = await rls.wait_for_case(case_id, lambda c: c["state"] == "label_issued")
    assert Decimal(str(case["refunded_amount"])) == 0
    assert case["waiting_for"] == "item"
    label = case["label"]
    assert label["tracking_number"].startswith("SBX") and label["label_url"].startswith("https://")
    assert rls.carrier.labels[f"label:{case_id}"].tracking_number == label["tracking_number"]
    assert rls.payments.calls_for(case_id) == [], "no refund before the item is back"
    # The customer fetches the label with their own token; another customer cannot.
    mine = await rls.client.get(
        f"/v1/cases/{case_id}/label", headers=rls.customer_token(a.customer_id)
    )
    assert mine.status_code == 200 and mine.json()["tracking_number"] == label["tracking_number"]
    other = await rls.client.get(
        f"/v1/cases/{case_id}/label", headers=rls.customer_token(kit.new_customer())
    )
    assert other.status_code == 404

    # The warehouse's webhook: the item arrived -> receive_item -> issue_refund. A redelivered
    # webhook is a no-op.
    r = await rls.client.post(f"/v1/cases/{case_id}/events/item-received", headers=rls.op)
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "refunded" and Decimal(str(r.json()["refunded_amount"])) == Decimal(
        "39.98"
    )
    again = await rls.client.post(f"/v1/cases/{case_id}/events/item-received", headers=rls.op)
    assert again.status_code == 200 and again.json()["state"] == "refunded"
    events = await rls.wait_for_transitions(case_id, 4)
    assert [b["transition"] for _, _, b in events] == [
        "open",
        "issue_label",
        "receive_item",
        "issue_refund",
    ]
    assert len(rls.payments.calls_for(case_id)) == 1
    ledger = await rls.sql(
        "SELECT kind, amount FROM seller_ledger WHERE case_id = :c ORDER BY kind", c=case_id
    )
    assert [(k, a) for k, a in ledger] == [
        ("fee", Decimal("2.50")),
        ("label", Decimal("4.90")),
        ("refund_paid", Decimal("39.98")),
    ]


async def test_replacement_waits_for_the_seller(rls, kit) -> None:
    _, a = await _setup(rls, kit)
    req = kit.remedy_request(a, "replacement")
    await rls.publish(req)
    case_id = case_id_for(req.request_id)
    (only,) = await rls.wait_for_transitions(case_id, 1)
    assert only[2]["transition"] == "open"
    case = await rls.wait_for_case(case_id, lambda c: c["state"] == "requested")
    assert case["waiting_for"] == "seller"
    assert rls.payments.calls_for(case_id) == []


async def test_request_for_another_customers_alert_is_rejected_without_payment(rls, kit) -> None:
    _, a = await _setup(rls, kit)
    intruder = kit.new_customer()
    req = kit.remedy_request(a, customer_id=intruder)
    await rls.publish(req)
    case_id = case_id_for(req.request_id)
    case = await rls.wait_for_case(case_id, lambda c: c["state"] == "rejected")
    assert "another customer" in case["reason"]
    assert rls.payments.calls_for(case_id) == []


async def test_unknown_case_is_404(rls) -> None:
    r = await rls.client.get(f"/v1/cases/{case_id_for('no-such-request')}", headers=rls.op)
    assert r.status_code == 404
