"""POST /v1/sellability-checks over the real service: recalls arrive on recalls.v1, the checkout
asks with an operator key and gets, per line, blocked / needs_check / allowed, with the recall and
why."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from purchase_matcher.guard import SellabilityAnswer, SellabilityRequest, check_sellability
from recall_shared import events as ev
from recall_shared.api_keys import Principal
from recall_shared.auth import generate_api_key

pytestmark = pytest.mark.integration

GTIN = "00012345678905"
PATH = "/v1/sellability-checks"


async def test_confirmed_possibly_affected_and_clean_lines(matcher, build) -> None:
    kettle, lamp, seller = build.new_id("p"), build.new_id("p"), build.new_id("s")
    by_product, by_lot = build.new_id("rc"), build.new_id("rc")
    await matcher.send_and_settle(
        ev.RecallPublished(
            recall=build.snapshot(by_product, ev.ScopeRule(product_ids=[kettle]), seller_id=None)
        ),
        ev.RecallPublished(
            recall=build.snapshot(
                by_lot,
                ev.ScopeRule(gtins=[GTIN], lots=ev.CodeRule(values=["L-7"])),
                title="Lamp recall",
                seller_id=None,
            )
        ),
    )
    headers = await matcher.operator()
    lines = [
        {"ref": "basket-1", "product_id": kettle, "seller_id": seller},
        {"ref": "basket-2", "product_id": lamp, "seller_id": seller, "gtin": "012345678905"},
        {"product_id": lamp, "seller_id": seller, "gtin": GTIN, "lot": "L-8"},
        {"product_id": build.new_id("p"), "seller_id": seller},
    ]
    r = await matcher.client.post(PATH, json={"lines": lines}, headers=headers)
    assert r.status_code == 200, r.text
    SellabilityAnswer.model_validate_json(r.content)  # the documented model, written without it
    answers = r.json()["lines"]
    assert [(a["index"], a["ref"], a["verdict"]) for a in answers] == [
        (0, "basket-1", "blocked"),
        (1, "basket-2", "needs_check"),
        (2, None, "allowed"),
        (3, None, "allowed"),
    ]
    [blocking] = answers[0]["recalls"]
    assert blocking["recall_id"] == by_product and blocking["tier"] == "confirmed"
    [possible] = answers[1]["recalls"]
    assert possible["recall_id"] == by_lot
    assert possible["unknown_attributes"] == ["lot"]
    assert "lot" in possible["reason"]

    # closed: no longer blocks anything
    closed = build.snapshot(by_product, ev.ScopeRule(product_ids=[kettle]), seller_id=None)
    await matcher.send_and_settle(ev.RecallClosed(recall=closed, closed_at=datetime.now(UTC)))
    r = await matcher.client.post(PATH, json={"lines": lines[:1]}, headers=headers)
    assert r.json()["lines"][0]["verdict"] == "allowed"


async def test_bad_requests_are_4xx_naming_the_field(matcher, build) -> None:
    headers = await matcher.operator()
    line = {"product_id": "p-1", "seller_id": "s-1"}
    cases = {
        "lines": {"lines": []},
        "lines.0.gtin": {"lines": [{**line, "gtin": "12345678901"[:10]}]},
        "lines.0.seller_id": {"lines": [{"product_id": "p-1"}]},
        "lines.0.colour": {"lines": [{**line, "colour": "red"}]},
        "lines.0.manufactured_on": {"lines": [{**line, "manufactured_on": "yesterday"}]},
    }
    for field, body in cases.items():
        r = await matcher.client.post(PATH, json=body, headers=headers)
        assert r.status_code == 422, (field, r.text)
        assert r.json()["error"] == "validation_failed"
        assert field in r.json()["message"], (field, r.json()["message"])
    r = await matcher.client.post(PATH, json={"lines": [line] * 101}, headers=headers)
    assert r.status_code == 422


async def test_only_operator_keys_may_ask(matcher, build) -> None:
    """The key is read on the guard's own pool (ApiKeyAuth.operator_on): the same answers as the
    session-based dependency."""
    seller_key, _ = await matcher.issue_key("seller", build.new_id("s"))
    revoked_key, revoked_id = await matcher.issue_key("operator")
    await matcher.revoke_key(revoked_key, revoked_id)
    body = {"lines": [{"product_id": "p-1", "seller_id": "s-1"}]}
    r = await matcher.client.post(PATH, json=body, headers={"X-Api-Key": seller_key})
    assert (r.status_code, r.json()["error"]) == (403, "forbidden")
    for headers in ({}, {"X-Api-Key": "not-a-key"}, {"X-Api-Key": revoked_key}):
        r = await matcher.client.post(PATH, json=body, headers=headers)
        assert (r.status_code, r.json()["error"]) == (401, "unauthorized"), headers
        assert r.headers["www-authenticate"] == "ApiKey"
    # A key of the issued shape not read from sellers.v1 yet may be seconds old (decisions/0008).
    r = await matcher.client.post(PATH, json=body, headers={"X-Api-Key": generate_api_key()})
    assert (r.status_code, r.json()["error"]) == (409, "not_known_yet")
    assert r.headers["retry-after"]


async def test_the_hot_path_answers_as_the_route(matcher, build) -> None:
    """Valid requests are answered beneath FastAPI's routing (guard_hot_path); the route itself,
    called directly, gives the same answer."""
    product = build.new_id("p")
    rule = ev.ScopeRule(product_ids=[product], lots=ev.CodeRule(values=["L1"]))
    await matcher.send_and_settle(
        ev.RecallPublished(recall=build.snapshot(build.new_id("rc"), rule, seller_id=None))
    )
    body = {
        "lines": [
            {"ref": "r1", "product_id": product, "seller_id": "s-1"},
            {"product_id": product, "seller_id": "s-1", "lot": "L1", "gtin": "12345670"},
        ]
    }
    r = await matcher.client.post(PATH, json=body, headers=await matcher.operator())
    assert r.status_code == 200, r.text
    guard = matcher.app.state.sellability_guard
    operator = Principal(role="operator", seller_id=None, key_id="test")
    direct = await check_sellability(SellabilityRequest.model_validate(body), operator, guard)
    hot, route = r.json(), json.loads(bytes(direct.body))
    assert hot.pop("checked_at") and route.pop("checked_at")
    assert hot == route
    assert [line["verdict"] for line in hot["lines"]] == ["needs_check", "blocked"]
