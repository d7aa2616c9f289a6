"""POST /v1/sellability-checks over the real service: recalls arrive on recalls.v1, the checkout
asks with an operator key and gets, per line, blocked / needs_check / allowed, with the recall and
why."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime

import pytest

from purchase_matcher.guard import SellabilityAnswer, SellabilityRequest, check_sellability
from recall_shared import events as ev
from recall_shared.api_keys import Principal
from recall_shared.auth import generate_api_key, hash_api_key
from recall_shared.testing import eventually

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
    operator = Principal(role="operator", seller_id=None, key_id="k-test")
    direct = await check_sellability(SellabilityRequest.model_validate(body), operator, guard)
    hot, route = r.json(), json.loads(bytes(direct.body))
    assert hot.pop("checked_at") and route.pop("checked_at")
    assert hot == route
    assert [line["verdict"] for line in hot["lines"]] == ["needs_check", "blocked"]


async def _verdict_changes(matcher, body: dict, headers: dict, wanted: tuple[int, str]) -> float:
    """Ask every 20 ms until the first line's (status, verdict or error) is ``wanted``; the time."""

    async def answer() -> tuple[int, str]:
        r = await matcher.client.post(PATH, json=body, headers=headers)
        return r.status_code, r.json()["lines"][0]["verdict"] if r.is_success else r.json()["error"]

    async with asyncio.timeout(15):
        while (got := await answer()) != wanted:
            assert got[0] in (200, 401), got
            await asyncio.sleep(0.02)
    return time.monotonic()


async def test_the_index_blocks_a_published_recall_and_allows_a_closed_one_within_its_bound(
    matcher, build
) -> None:
    """No waiting for the index here: the guard's answer follows the tables within
    guard_index_max_age_s, answered from the index (it holds the recall)."""
    product, recall_id = build.new_id("p"), build.new_id("rc")
    headers = await matcher.operator()
    body = {"lines": [{"product_id": product, "seller_id": "s-1"}]}
    guard = matcher.app.state.sellability_guard
    bound = matcher.settings.guard_index_max_age_s
    snap = build.snapshot(recall_id, ev.ScopeRule(product_ids=[product]), seller_id=None)
    status = "SELECT status FROM recalls WHERE recall_id = :r"

    await matcher.send(ev.RecallPublished(recall=snap))
    await eventually(lambda: _equals(matcher.scalar(status, r=recall_id), "active"), interval=0.02)
    applied = time.monotonic()
    assert await _verdict_changes(matcher, body, headers, (200, "blocked")) - applied <= bound
    assert recall_id in guard.index.state.recalls

    await matcher.send(ev.RecallClosed(recall=snap, closed_at=datetime.now(UTC)))
    await eventually(lambda: _equals(matcher.scalar(status, r=recall_id), "closed"), interval=0.02)
    closed = time.monotonic()
    assert await _verdict_changes(matcher, body, headers, (200, "allowed")) - closed <= bound
    assert recall_id not in guard.index.state.recalls


async def test_a_revoked_operator_key_is_refused_within_the_bound(matcher, build) -> None:
    key, key_id = await matcher.issue_key("operator")
    await matcher.guard_caught_up()
    guard = matcher.app.state.sellability_guard
    assert hash_api_key(key, matcher.settings.api_key_pepper) in guard.index.state.operator_keys
    headers = {"X-Api-Key": key}
    body = {"lines": [{"product_id": "p-1", "seller_id": "s-1"}]}
    r = await matcher.client.post(PATH, json=body, headers=headers)
    assert r.status_code == 200, r.text

    await matcher.send(ev.ApiKeyRevoked(key_id=key_id, revoked_at=datetime.now(UTC)))
    revoked = "SELECT revoked_at IS NOT NULL FROM seller_keys WHERE key_id = :k"
    await eventually(lambda: _equals(matcher.scalar(revoked, k=key_id), True), interval=0.02)
    applied = time.monotonic()
    refused = await _verdict_changes(matcher, body, headers, (401, "unauthorized"))
    assert refused - applied <= matcher.settings.guard_index_max_age_s


async def test_while_the_index_is_not_current_the_tables_answer(matcher, build) -> None:
    """An index too old to answer from (refreshes failing) is not used: the same answers from
    the tables, at once."""
    guard = matcher.app.state.sellability_guard
    guard.index.stop()  # it learns nothing more...
    await asyncio.sleep(0.2)  # (a refresh under way ends)
    guard.index.max_age_s = -1.0  # ...and is too old
    product = build.new_id("p")
    headers = await matcher.operator()
    snap = build.snapshot(build.new_id("rc"), ev.ScopeRule(product_ids=[product]), seller_id=None)
    await matcher.send(ev.RecallPublished(recall=snap))
    status = "SELECT status FROM recalls WHERE recall_id = :r"
    await eventually(lambda: _equals(matcher.scalar(status, r=snap.recall_id), "active"))
    body = {"lines": [{"product_id": product, "seller_id": "s-1"}]}
    r = await matcher.client.post(PATH, json=body, headers=headers)
    assert r.json()["lines"][0]["verdict"] == "blocked"
    assert snap.recall_id not in guard.index.state.recalls


async def _equals(value, expected) -> bool:
    return await value == expected
