"""Proofs of destruction: the automatic checks (decodes, size, a photo reused for another case), the
operator's review queue (accept: the refund follows, once; reject: with a reason the customer sees,
who may upload another), and the policy for which cases pay without review."""

from __future__ import annotations

import io
from decimal import Decimal

import orjson
import pytest
from PIL import Image

from recall_shared.envelope import read_headers
from recall_shared.testing import read_to_end
from recall_shared.topics import REMEDIES
from refund_logistics.handlers import case_id_for

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]


async def _proof_case(rls, kit, price: str = "19.99"):
    rc = kit.recall()
    a = kit.alert(rc, kit.new_customer(), lines=[(1, price)])
    await rls.publish(kit.published(rc))
    await rls.publish(kit.raised(a))
    req = kit.remedy_request(a, "refund_on_destruction")
    await rls.publish(req)
    case_id = case_id_for(req.request_id)
    await rls.wait_for_case(case_id, lambda c: c["waiting_for"] == "proof")
    return a, case_id


async def _steps(rls, case_id: str) -> list[tuple[str, int, str | None]]:
    """The remedy.case_progressed.v1 steps of a case on remedies.v1: (step, attempt, reason)."""
    found = []
    for r in await read_to_end(REMEDIES.physical(rls.settings.topic_prefix), timeout=10):
        env = read_headers(r.headers, r.value)
        body = orjson.loads(env.data)
        if env.type == "remedy.case_progressed.v1" and body["case_id"] == case_id:
            found.append((body["step"], body["attempt"], body["reason"]))
    return found


async def test_an_upload_that_is_not_a_usable_photo_is_refused_with_the_reason(rls, kit) -> None:
    a, case_id = await _proof_case(rls, kit)
    tiny = io.BytesIO()
    Image.new("RGB", (120, 90), "grey").save(tiny, "PNG")
    truncated = kit.photo_for(case_id)[:300]
    pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF"
    for data, ctype, message in [
        (tiny.getvalue(), "image/png", "120x90 pixels; it must be at least 200 pixels"),
        (truncated, "image/jpeg", "damaged or incomplete"),
        (pdf, "image/jpeg", "not an image that can be read"),
    ]:
        r = await rls.client.post(
            f"/v1/cases/{case_id}/proof",
            content=data,
            headers={**rls.customer_token(a.customer_id), "Content-Type": ctype},
        )
        assert r.status_code == 422 and message in r.text, r.text
    case = await rls.case(case_id)
    assert case is not None and case["proof"] is None and case["waiting_for"] == "proof"


async def test_a_photo_used_for_another_case_is_held_for_review_and_a_rejection_lets_the_customer_retry(  # noqa: E501
    rls, kit
) -> None:
    first, first_case = await _proof_case(rls, kit)
    assert (await rls.submit_proof(first_case, first.customer_id)).status_code == 200
    second, case_id = await _proof_case(rls, kit)
    reused = kit.photo_for(first_case)
    held = await rls.submit_proof(case_id, second.customer_id, photo=reused)
    assert held.status_code == 202, held.text
    assert held.json()["waiting_for"] == "review" and held.json()["proof"]["status"] == (
        "pending_review"
    )
    assert rls.payments.calls_for(case_id) == []

    queue = (await rls.client.get("/v1/reviews?limit=200", headers=rls.op)).json()["items"]
    (item,) = [i for i in queue if i["case_id"] == case_id]
    assert item["flags"][0]["flag"] == "duplicate_photo"
    assert item["flags"][0]["case_id"] == first_case and item["flags"][0]["same_customer"] is False
    image = await rls.client.get(item["image_url"], headers=rls.op)
    assert image.status_code == 200 and image.content == reused
    assert (await rls.client.get("/v1/reviews", headers=rls.customer_token("x"))).status_code == 401

    reason = "This photo was already sent for another order. Please photograph your kettle."
    rejected = await rls.client.post(
        f"/v1/cases/{case_id}/proof/reject", json={"reason": reason}, headers=rls.op
    )
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["waiting_for"] == "proof" and rejected.json()["reason"] == reason
    again = await rls.submit_proof(case_id, second.customer_id, photo=reused)
    assert again.status_code == 409 and reason in again.text

    fresh = await rls.submit_proof(case_id, second.customer_id)  # its own photo: pays at once
    assert fresh.status_code == 200, fresh.text
    body = fresh.json()
    assert body["state"] == "refunded" and body["proof"]["attempt"] == 2
    assert body["proof"]["status"] == "accepted" and body["reason"] is None
    assert len(rls.payments.calls_for(case_id)) == 1
    steps = await _steps(rls, case_id)
    assert steps == [
        ("proof_under_review", 1, None),
        ("proof_rejected", 1, reason),
        ("proof_accepted", 2, None),
    ]


async def test_a_case_worth_more_than_the_policy_allows_pays_once_the_operator_accepts(
    rls, kit
) -> None:
    limit = rls.settings.proof_pay_without_review_up_to
    a, case_id = await _proof_case(rls, kit, price=str(limit + Decimal("0.01")))
    held = await rls.submit_proof(case_id, a.customer_id)
    assert held.status_code == 202 and held.json()["waiting_for"] == "review"
    assert held.json()["proof"]["status"] == "pending_review"
    not_yet = await rls.client.post(f"/v1/cases/{case_id}/fulfilment", json={}, headers=rls.op)
    assert not_yet.status_code == 409

    accepted = await rls.client.post(f"/v1/cases/{case_id}/proof/accept", headers=rls.op)
    assert accepted.status_code in (200, 202), accepted.text
    case = await rls.wait_for_case(case_id, lambda c: c["state"] == "refunded")
    assert Decimal(str(case["refunded_amount"])) == limit + Decimal("0.01")
    assert case["proof"]["status"] == "accepted"
    twice = await rls.client.post(f"/v1/cases/{case_id}/proof/accept", headers=rls.op)
    assert twice.status_code == 200 and twice.json()["state"] == "refunded"
    assert len(rls.payments.refunds_for(case_id)) == 1
    assert len(rls.payments.calls_for(case_id)) == 1
    late = await rls.client.post(
        f"/v1/cases/{case_id}/proof/reject", json={"reason": "x"}, headers=rls.op
    )
    assert late.status_code == 409 and "not awaiting review" in late.text


async def test_review_decisions_need_a_proof_under_review(rls, kit) -> None:
    _, case_id = await _proof_case(rls, kit)
    for action, body in (("accept", None), ("reject", {"reason": "blurry"})):
        r = await rls.client.post(f"/v1/cases/{case_id}/proof/{action}", json=body, headers=rls.op)
        assert r.status_code == 409 and "no proof of destruction to review" in r.text
    seller_key, _ = await rls.issue_key("seller", "some-seller")
    r = await rls.client.post(
        f"/v1/cases/{case_id}/proof/accept", headers={"X-Api-Key": seller_key}
    )
    assert r.status_code in (401, 403)


class SimulatedCrash(Exception):
    pass


@pytest.mark.parametrize("point", ["after_intent", "after_provider_call", "after_refund_row"])
async def test_a_crash_while_accepting_recovers_without_a_second_payment(
    rls, kit, point: str
) -> None:
    limit = rls.settings.proof_pay_without_review_up_to
    price = limit + Decimal("5.00")
    a, case_id = await _proof_case(rls, kit, price=str(price))
    assert (await rls.submit_proof(case_id, a.customer_id)).status_code == 202
    cases = rls.app.state.cases
    armed = {(point, case_id)}

    async def crash(at: str, cid: str) -> None:
        if (at, cid) in armed:
            armed.discard((at, cid))
            raise SimulatedCrash(at)

    previous_fault, previous_lease = cases.fault, cases.refund_lease_s
    cases.fault, cases.refund_lease_s = crash, 0.3
    try:
        crashed = await rls.client.post(f"/v1/cases/{case_id}/proof/accept", headers=rls.op)
        assert crashed.status_code == 500 and not armed
        # The operator clicks again; the recovery loop settles whatever the crash left.
        again = await rls.client.post(f"/v1/cases/{case_id}/proof/accept", headers=rls.op)
        assert again.status_code in (200, 202), again.text
        case = await rls.wait_for_case(case_id, lambda c: c["state"] == "refunded", timeout=20)
    finally:
        cases.fault, cases.refund_lease_s = previous_fault, previous_lease
    assert Decimal(str(case["refunded_amount"])) == price
    made = rls.payments.refunds_for(case_id)
    assert len(made) == 1 and made[0].amount == price
    assert [t["transition"] for t in case["transitions"]] == ["open", "issue_refund"]
