"""The seller-facing API: authentication from sellers.v1, the authorization matrix on every route,
enrolment, the seller's commands with their 409s, proof uploads, and the effectiveness reports."""

from __future__ import annotations

import base64
import csv
import io
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import pytest_asyncio

from recall_shared import events as ev
from refund_logistics.handlers import case_id_for
from refund_logistics.report import CPSC_COLUMNS

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]


async def _case(
    rls,
    kit,
    rc,
    remedy,
    *,
    customer=None,
    lines=((2, "19.99"),),
    wait=lambda c: c["waiting_for"] not in (None, "alert", "recall"),
):
    a = kit.alert(rc, customer or kit.new_customer(), lines=list(lines))
    await rls.publish(kit.raised(a))
    req = kit.remedy_request(a, remedy)
    await rls.publish(req)
    case_id = case_id_for(req.request_id)
    return a, case_id, wait


class World:
    """Seller A with a recall and cases in every state the routes need; seller B; the operator."""

    rc: ev.RecallSnapshot
    rc_other: ev.RecallSnapshot  # seller B's
    a_key: str
    b_key: str
    revoked_key: str
    alerts: dict[str, ev.AlertState]  # by case name
    cases: dict[str, str]  # case ids by case name


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(rls, kit):
    w = World()
    w.rc = kit.recall()
    w.rc_other = kit.recall()  # seller B's recall
    await rls.publish(kit.published(w.rc))
    await rls.publish(kit.published(w.rc_other))
    w.a_key, _ = await rls.issue_key("seller", w.rc.seller_id)
    w.b_key, _ = await rls.issue_key("seller", w.rc_other.seller_id)
    w.revoked_key, revoked_id = await rls.issue_key("seller", w.rc.seller_id)
    await rls.publish(ev.ApiKeyRevoked(key_id=revoked_id, revoked_at=datetime.now(UTC)))
    specs = {
        "ret": "refund_with_return",
        "rep_a": "replacement",
        "rep_op": "repair",
        "rej": "replacement",
        "proof": "refund_on_destruction",
        "close_a": "replacement",
        "close_op": "replacement",
    }
    made = {name: await _case(rls, kit, w.rc, remedy) for name, remedy in specs.items()}
    w.alerts = {name: a for name, (a, _, _) in made.items()}
    w.cases = {name: cid for name, (_, cid, _) in made.items()}
    for _, cid, wait in made.values():
        await rls.wait_for_case(cid, wait)
    for name in ("close_a", "close_op"):
        r = await rls.client.post(f"/v1/cases/{w.cases[name]}/fulfilment", json={}, headers=rls.op)
        assert r.status_code == 200, r.text

    async def revoked_is_refused() -> bool:
        return (
            await rls.client.get("/v1/cases", headers={"X-Api-Key": w.revoked_key})
        ).status_code == 401

    from recall_shared.testing import eventually

    await eventually(revoked_is_refused, timeout=10, interval=0.1)
    return w


def _who(rls, w, who: str) -> dict[str, str]:
    return {
        "A": {"X-Api-Key": w.a_key},
        "B": {"X-Api-Key": w.b_key},
        "op": rls.op,
        "none": {},
        "bad": {"X-Api-Key": "rak_" + "x" * 40},
        "revoked": {"X-Api-Key": w.revoked_key},
    }[who]


DENIED = [("none", 401), ("bad", 401), ("revoked", 401)]


async def test_the_authorization_matrix_on_every_seller_and_operator_route(rls, world) -> None:
    w = world
    r, c = w.rc.recall_id, w.cases
    matrix: list[tuple[str, str, dict | None, list[tuple[str, int]]]] = [
        ("GET", "/v1/cases", None, [*DENIED, ("B", 200), ("A", 200), ("op", 200)]),
        ("GET", f"/v1/cases/{c['ret']}", None, [*DENIED, ("B", 404), ("A", 200), ("op", 200)]),
        ("GET", f"/v1/recalls/{r}/enrolment", None, [*DENIED, ("B", 404), ("A", 200), ("op", 200)]),
        (
            "POST",
            f"/v1/recalls/{r}/enrolment",
            None,
            [*DENIED, ("B", 404), ("A", 200), ("op", 200)],
        ),
        (
            "DELETE",
            f"/v1/recalls/{w.rc_other.recall_id}/enrolment",
            None,
            [*DENIED, ("A", 404), ("B", 200), ("op", 200)],
        ),
        ("GET", f"/v1/recalls/{r}/report", None, [*DENIED, ("B", 404), ("A", 200), ("op", 200)]),
        (
            "GET",
            f"/v1/recalls/{r}/report/cpsc-monthly?format=csv",
            None,
            [*DENIED, ("B", 404), ("A", 200), ("op", 200)],
        ),
        ("GET", "/v1/ledger", None, [*DENIED, ("B", 200), ("A", 200), ("op", 200)]),
        (
            "GET",
            f"/v1/ledger?seller_id={w.rc.seller_id}",
            None,
            [*DENIED, ("B", 404), ("A", 200), ("op", 200)],
        ),
        ("POST", f"/v1/cases/{c['rep_a']}/fulfilment", {}, [*DENIED, ("B", 404), ("A", 200)]),
        (
            "POST",
            f"/v1/cases/{c['rep_op']}/fulfilment",
            {"kind": "repair"},
            [*DENIED, ("B", 404), ("op", 200)],
        ),
        ("POST", f"/v1/cases/{c['close_a']}/close", None, [*DENIED, ("B", 404), ("A", 200)]),
        ("POST", f"/v1/cases/{c['close_op']}/close", None, [*DENIED, ("B", 404), ("op", 200)]),
        (
            "POST",
            f"/v1/cases/{c['rej']}/reject",
            {"reason": "fraud suspected"},
            [*DENIED, ("B", 403), ("A", 403), ("op", 200)],
        ),
        (
            "POST",
            f"/v1/cases/{c['ret']}/events/item-received",
            None,
            [*DENIED, ("B", 403), ("A", 403), ("op", 200)],
        ),
    ]
    failures = []
    for method, path, body, expected in matrix:
        for who, status in expected:
            resp = await rls.client.request(method, path, json=body, headers=_who(rls, w, who))
            if resp.status_code != status:
                failures.append(
                    f"{method} {path} as {who}: {resp.status_code} != {status} ({resp.text[:120]})"
                )
    assert not failures, "\n".join(failures)
    # Seller B's list holds none of A's cases; A's holds its own.
    b_cases = (await rls.client.get("/v1/cases", headers=_who(rls, w, "B"))).json()["items"]
    a_cases = (
        await rls.client.get(f"/v1/cases?recall_id={r}&limit=200", headers=_who(rls, w, "A"))
    ).json()["items"]
    assert b_cases == [] and set(c.values()) <= {x["case_id"] for x in a_cases}


async def test_the_customer_routes_answer_only_the_cases_customer(rls, kit, world) -> None:
    w = world
    case_id, owner = w.cases["proof"], w.alerts["proof"].customer_id
    photo = {"Content-Type": "image/jpeg"}
    for headers, status in [
        ({}, 401),
        ({"Authorization": "Bearer not-a-jwt"}, 401),
        ({"X-Api-Key": w.a_key}, 401),
        (rls.op, 401),
        (rls.customer_token(kit.new_customer()), 404),
    ]:
        resp = await rls.client.post(
            f"/v1/cases/{case_id}/proof", content=kit.photo, headers={**headers, **photo}
        )
        assert resp.status_code == status, (headers, resp.text)
        label = await rls.client.get(f"/v1/cases/{w.cases['ret']}/label", headers=headers)
        assert label.status_code == status, (headers, label.text)
    assert rls.payments.calls_for(case_id) == []
    ok = await rls.submit_proof(case_id, owner)
    assert ok.status_code == 200 and ok.json()["state"] == "refunded"
    assert "provider_ref" not in ok.text  # the customer's receipt is not the seller's view


async def test_commands_that_do_not_fit_the_state_are_409_with_the_message(rls, kit, world) -> None:
    w = world
    again = await rls.client.post(
        f"/v1/cases/{w.cases['rep_a']}/fulfilment", json={}, headers=rls.op
    )
    assert (
        again.status_code == 409
        and "cannot ship_replacement a case that is replacement_shipped" in again.json()["message"]
    )
    reject = await rls.client.post(
        f"/v1/cases/{w.cases['proof']}/reject", json={"reason": "x"}, headers=rls.op
    )
    assert (
        reject.status_code == 409
        and "cannot reject a case that is refunded" in reject.json()["message"]
    )
    wrong = await rls.client.post(f"/v1/cases/{w.cases['ret']}/fulfilment", json={}, headers=rls.op)
    assert wrong.status_code == 409 and "refund_with_return" in wrong.json()["message"]
    closed = await rls.case(w.cases["close_a"])
    assert closed["state"] == "closed" and closed["fulfilment"]["kind"] == "replacement"
    rejected = await rls.case(w.cases["rej"])
    assert rejected["state"] == "rejected" and rejected["reason"] == "fraud suspected"
    missing = await rls.client.post(
        f"/v1/cases/{case_id_for('nope')}/reject", json={"reason": "x"}, headers=rls.op
    )
    assert missing.status_code == 404
    empty_reason = await rls.client.post(
        f"/v1/cases/{w.cases['rep_op']}/reject", json={"reason": ""}, headers=rls.op
    )
    assert empty_reason.status_code == 422


async def test_proof_uploads_multipart_and_base64_and_refuses_non_images(rls, kit) -> None:
    rc = kit.recall()
    await rls.publish(kit.published(rc))
    made = [await _case(rls, kit, rc, "refund_on_destruction") for _ in range(3)]
    for _, cid, _ in made:
        await rls.wait_for_case(cid, lambda c: c["waiting_for"] == "proof")
    (a1, c1, _), (a2, c2, _), (a3, c3, _) = made
    multipart = await rls.client.post(
        f"/v1/cases/{c1}/proof",
        files={"photo": ("kettle.jpg", kit.photo_for(c1), "image/jpeg")},
        headers=rls.customer_token(a1.customer_id),
    )
    assert multipart.status_code == 200, multipart.text
    assert multipart.json()["proof"]["size"] == len(kit.photo_for(c1))
    b64 = await rls.client.post(
        f"/v1/cases/{c2}/proof",
        json={"image_base64": base64.b64encode(kit.photo_for(c2)).decode()},
        headers=rls.customer_token(a2.customer_id),
    )
    assert b64.status_code == 200 and b64.json()["state"] == "refunded"
    text = await rls.client.post(
        f"/v1/cases/{c3}/proof",
        content=b"not a photo",
        headers={**rls.customer_token(a3.customer_id), "Content-Type": "image/jpeg"},
    )
    assert text.status_code == 422
    other = await rls.submit_proof(c1, a1.customer_id, photo=kit.photo_for(c1) + b"different")
    assert other.status_code == 409
    assert (await rls.case(c3))["state"] == "requested" and rls.payments.calls_for(c3) == []


async def test_enrolment_decides_for_new_requests(rls, kit) -> None:
    rc = kit.recall(enrolled=False)
    await rls.publish(kit.published(rc))
    key, _ = await rls.issue_key("seller", rc.seller_id)
    seller = {"X-Api-Key": key}
    got = (await rls.client.get(f"/v1/recalls/{rc.recall_id}/enrolment", headers=seller)).json()
    assert got["enrolled"] is False and got["source"] == "published"
    _, referred, _ = await _case(rls, kit, rc, "refund_with_return")
    assert (await rls.wait_for_case(referred, lambda c: c["state"] != "requested"))[
        "state"
    ] == "referred_to_seller"

    enrolled = (
        await rls.client.post(f"/v1/recalls/{rc.recall_id}/enrolment", headers=seller)
    ).json()
    assert enrolled["enrolled"] is True and enrolled["source"] == "explicit"
    _, run, _ = await _case(rls, kit, rc, "refund_with_return")
    assert (await rls.wait_for_case(run, lambda c: c["state"] != "requested"))[
        "state"
    ] == "label_issued"

    left = (await rls.client.delete(f"/v1/recalls/{rc.recall_id}/enrolment", headers=seller)).json()
    assert left["enrolled"] is False
    _, referred_again, _ = await _case(rls, kit, rc, "refund_on_destruction")
    case = await rls.wait_for_case(referred_again, lambda c: c["state"] != "requested")
    assert case["state"] == "referred_to_seller" and rc.content.consumer_contact in case["reason"]
    assert (await rls.case(run))["state"] == "label_issued", (
        "un-enrolling leaves running cases alone"
    )


async def test_cases_are_paginated_and_filtered(rls, kit) -> None:
    rc = kit.recall()
    await rls.publish(kit.published(rc))
    made = [
        await _case(rls, kit, rc, remedy)
        for remedy in ("replacement", "replacement", "refund_with_return")
    ]
    for _, cid, wait in made:
        await rls.wait_for_case(cid, wait)
    key, _ = await rls.issue_key("seller", rc.seller_id)
    seller = {"X-Api-Key": key}
    page1 = (
        await rls.client.get(f"/v1/cases?recall_id={rc.recall_id}&limit=2", headers=seller)
    ).json()
    page2 = (
        await rls.client.get(
            f"/v1/cases?recall_id={rc.recall_id}&limit=2&cursor={page1['next_cursor']}",
            headers=seller,
        )
    ).json()
    assert len(page1["items"]) == 2 and len(page2["items"]) == 1 and page2["next_cursor"] is None
    assert {x["case_id"] for x in page1["items"] + page2["items"]} == {cid for _, cid, _ in made}
    labelled = (
        await rls.client.get(
            f"/v1/cases?recall_id={rc.recall_id}&state=label_issued", headers=seller
        )
    ).json()
    assert [x["case_id"] for x in labelled["items"]] == [made[2][1]]
    assert (await rls.client.get("/v1/cases?state=nonsense", headers=seller)).status_code == 422
    assert (await rls.client.get("/v1/cases?cursor=%%%", headers=seller)).status_code == 422


async def test_the_effectiveness_report_and_the_cpsc_export(rls, kit) -> None:
    rc = kit.recall()
    await rls.publish(kit.published(rc))
    c1, c2, c3 = kit.new_customer(), kit.new_customer(), kit.new_customer()
    a1 = kit.alert(rc, c1, lines=[(2, "19.99")])
    a2 = kit.alert(rc, c2, lines=[(1, "19.99")])
    a3 = kit.alert(rc, c3, lines=[(3, "19.99")])
    for a in (a1, a2, a3):
        await rls.publish(kit.raised(a))
    now = datetime.now(UTC)
    await rls.publish(
        ev.AlertWithdrawn(
            alert_id=a3.alert_id,
            alert_version=2,
            customer_id=c3,
            recall_id=rc.recall_id,
            recall_version=1,
            reason="lot out of scope",
        )
    )
    for a, ok in ((a1, True), (a2, True), (a3, False)):
        common = {
            "notice_id": str(uuid.uuid4()),
            "alert_id": a.alert_id,
            "customer_id": a.customer_id,
            "recall_id": rc.recall_id,
            "kind": "initial",
            "alert_version": 1,
        }
        await rls.publish(
            ev.NoticeSent(**common, recipient_role="purchaser", sent_at=now)
            if ok
            else ev.NoticeFailed(
                **common, reason="550 mailbox unknown", permanent=True, failed_at=now
            )
        )
    await rls.publish(
        ev.NotAffectedDeclared(
            alert_id=a2.alert_id, customer_id=c2, recall_id=rc.recall_id, declared_at=now
        )
    )
    for a in (a1, a1, a3):  # a3's alert was withdrawn: its view does not count
        await rls.publish(
            ev.AlertViewed(
                alert_id=a.alert_id,
                customer_id=a.customer_id,
                recall_id=rc.recall_id,
                alert_version=1,
                viewed_at=now,
            )
        )
    req = kit.remedy_request(a1)
    await rls.publish(req)
    case_id = case_id_for(req.request_id)
    await rls.wait_for_case(case_id, lambda c: c["waiting_for"] == "proof")
    assert (await rls.submit_proof(case_id, c1)).status_code == 200
    key, _ = await rls.issue_key("seller", rc.seller_id)
    seller = {"X-Api-Key": key}
    period = f"{now.year:04d}-{now.month:02d}"

    async def settled() -> dict | None:
        rep = (
            await rls.client.get(
                f"/v1/recalls/{rc.recall_id}/report?period={period}", headers=seller
            )
        ).json()
        return (
            rep
            if rep["customers_attempted"] == 3
            and rep["customers_not_affected"] == 1
            and rep["alerts_withdrawn"] == 1
            and rep["customers_viewed"] >= 1
            else None
        )

    from recall_shared.testing import eventually

    rep = await eventually(settled, timeout=15, interval=0.2)
    assert rep["units_affected"] == 3 and rep["customers_affected"] == 2
    # Two sent (no report yet: notified, not confirmed delivered), one failed.
    assert (rep["customers_notified"], rep["customers_delivered"]) == (2, 0)
    assert rep["customers_notice_failed"] == 1
    assert rep["notices_by_channel"] == {
        "email": {
            "customers_attempted": 3,
            "customers_notified": 2,
            "customers_delivered": 0,
            "customers_bounced": 0,
            "customers_failed_only": 1,
        }
    }
    assert rep["customers_responded"] == 2 and rep["customers_requested_remedy"] == 1
    assert (rep["customers_viewed"], rep["customers_viewed_period"]) == (1, 1)
    assert (
        rep["remedies"]["refund_on_destruction"]["chosen"] == 1
        and rep["remedies"]["refund_on_destruction"]["completed"] == 1
    )
    assert rep["units_corrected"] == {"period": 2, "total": 2} and rep["units_uncorrected"] == 1
    assert rep["correction_rate_pct"] == "66.7"
    assert rep["refunds_paid"] == [
        {
            "currency": "EUR",
            "count": 1,
            "amount": "39.98",
            "count_period": 1,
            "amount_period": "39.98",
        }
    ]
    assert {(b["kind"], b["amount"]) for b in rep["seller_billed"]} == {
        ("fee", "2.50"),
        ("refund_paid", "39.98"),
    }

    old = (
        await rls.client.get(f"/v1/recalls/{rc.recall_id}/report?period=2001-01", headers=seller)
    ).json()
    assert (
        old["units_corrected"] == {"period": 0, "total": 2}
        and old["refunds_paid"][0]["amount_period"] == "0.00"
    )
    assert (
        await rls.client.get(f"/v1/recalls/{rc.recall_id}/report?period=2026-13", headers=seller)
    ).status_code == 422

    csv_resp = await rls.client.get(
        f"/v1/recalls/{rc.recall_id}/report/cpsc-monthly?period={period}&format=csv", headers=seller
    )
    assert csv_resp.status_code == 200 and csv_resp.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(csv_resp.text)))
    assert len(rows) == 1 and list(rows[0]) == list(CPSC_COLUMNS)
    row = rows[0]
    assert (
        row["units_affected"] == "3"
        and row["units_corrected_period"] == "2"
        and row["units_corrected_to_date"] == "2"
    )
    assert (
        row["units_refunded_on_destruction_to_date"] == "2"
        and row["customers_notified_direct_to_date"] == "2"
    )
    assert row["customers_notice_failed_to_date"] == "1"
    assert row["customers_contacted_by_channel"] == "email=2"
    assert (row["customers_viewed_period"], row["customers_viewed_to_date"]) == ("1", "1")
    assert (
        row["refunds_paid_to_date"] == "39.98"
        and row["currency"] == "EUR"
        and row["product"] == rc.content.title
    )
    js = (
        await rls.client.get(
            f"/v1/recalls/{rc.recall_id}/report/cpsc-monthly?period={period}", headers=seller
        )
    ).json()
    assert js["columns"] == list(CPSC_COLUMNS) and js["rows"][0]["units_uncorrected"] == 1
    assert Decimal(js["rows"][0]["refunds_paid_period"]) == Decimal("39.98")
