"""Recalls through the API: product ownership from catalog.listings.v1, the lifecycle and its events
on recalls.v1 (via the outbox), Idempotency-Key, validation, listing and pagination."""

from __future__ import annotations

import asyncio

import pytest

from recall_shared import envelope
from recall_shared import events as ev
from recall_shared.envelope import parse
from recall_shared.events import RecallAmended, RecallClosed, RecallPublished
from recall_shared.testing import read_topic

pytestmark = pytest.mark.integration


async def _seller(intake, unique):
    seller_id, key = await intake.seller_key()
    product = unique("prod")
    await intake.listing(product, [seller_id])
    return seller_id, {"X-Api-Key": key}, product


# --------------------------------------------------------------------------- ownership


async def test_seller_may_recall_a_product_only_once_the_catalog_says_it_sells_it(
    intake, make_recall_body, unique
) -> None:
    seller_id, key = await intake.seller_key()
    other_id, _ = await intake.seller_key()
    headers = {"X-Api-Key": key}
    product, gtin = unique("prod"), "00012345678905"

    # No listing names the product yet: not final, retry (the listing event may be on its way).
    early = await intake.client.post("/v1/recalls", json=make_recall_body(product), headers=headers)
    assert early.status_code == 409, early.text
    assert early.headers["Retry-After"] == "2"
    detail = early.json()["detail"]
    assert detail["error"] == "not_known_yet"
    assert detail["message"].startswith(f"rules[0].product_ids[0]: product {product!r} is not")
    assert "send the same request again" in detail["message"]

    # the catalog lists the product for somebody else: not this seller's (final)
    await intake.listing(product, [other_id])
    refused = await intake.client.post(
        "/v1/recalls", json=make_recall_body(product), headers=headers
    )
    assert refused.status_code == 422, refused.text
    detail = refused.json()["detail"]
    assert detail["error"] == "not_your_product"
    assert "Retry-After" not in refused.headers
    assert detail["message"].startswith("rules[0].product_ids[0]:") and product in detail["message"]

    # a later listing event adds this seller (and a GTIN): the same request now succeeds
    await intake.send_listing(product, [other_id, seller_id], gtins=[gtin, "not-a-gtin"])
    await intake.listing_seen(product, seller_id)
    ok = await intake.client.post("/v1/recalls", json=make_recall_body(product), headers=headers)
    assert ok.status_code == 201, ok.text
    assert ok.json()["seller_id"] == seller_id
    assert await intake.scalar("SELECT gtins FROM listings WHERE product_id = :p", p=product) == [
        gtin
    ]

    # GTINs are checked the same way
    by_gtin = await intake.client.post(
        "/v1/recalls", json=make_recall_body(product, gtins=(gtin,)), headers=headers
    )
    assert by_gtin.status_code == 201, by_gtin.text
    unknown_gtin = await intake.client.post(
        "/v1/recalls", json=make_recall_body(product, gtins=("00099999999990",)), headers=headers
    )
    assert unknown_gtin.status_code == 409, unknown_gtin.text
    assert unknown_gtin.json()["detail"]["error"] == "not_known_yet"
    assert "rules[0].gtins[0]" in unknown_gtin.json()["detail"]["message"]
    # a GTIN the catalog lists for another seller only: final
    await intake.listing(unique("lamp"), [other_id], gtins=["00099999999990"])
    foreign_gtin = await intake.client.post(
        "/v1/recalls", json=make_recall_body(product, gtins=("00099999999990",)), headers=headers
    )
    assert foreign_gtin.status_code == 422, foreign_gtin.text
    assert foreign_gtin.json()["detail"]["error"] == "not_your_product"
    assert "rules[0].gtins[0]" in foreign_gtin.json()["detail"]["message"]
    assert await intake.scalar("SELECT count(*) FROM recalls") == 2


async def test_ownership_is_checked_on_amendments_and_operators_may_name_any_product(
    intake, make_recall_body, unique
) -> None:
    _, headers, product = await _seller(intake, unique)
    rid = (
        await intake.client.post("/v1/recalls", json=make_recall_body(product), headers=headers)
    ).json()["recall_id"]
    assert (
        await intake.client.post(f"/v1/recalls/{rid}/publish", headers=headers)
    ).status_code == 200
    foreign = unique("foreign")
    widened = await intake.client.post(
        f"/v1/recalls/{rid}/amendments",
        json={"rules": [{"product_ids": [product]}, {"product_ids": [foreign]}]},
        headers=headers,
    )
    assert widened.status_code == 409, widened.text  # nobody lists it yet: not_known_yet
    assert widened.json()["detail"]["error"] == "not_known_yet"
    assert "rules[1].product_ids[0]" in widened.json()["detail"]["message"]
    other, _ = await intake.seller_key()
    await intake.listing(foreign, [other])
    widened = await intake.client.post(
        f"/v1/recalls/{rid}/amendments",
        json={"rules": [{"product_ids": [product]}, {"product_ids": [foreign]}]},
        headers=headers,
    )
    assert widened.status_code == 422, widened.text
    assert widened.json()["detail"]["error"] == "not_your_product"
    assert "rules[1].product_ids[0]" in widened.json()["detail"]["message"]
    assert await intake.scalar("SELECT version FROM recalls WHERE recall_id = :r", r=rid) == 1

    operator = {"X-Api-Key": await intake.operator_key()}
    op = await intake.client.post("/v1/recalls", json=make_recall_body(foreign), headers=operator)
    assert op.status_code == 201, op.text
    amended = await intake.client.post(
        f"/v1/recalls/{rid}/amendments",
        json={"rules": [{"product_ids": [product, foreign]}]},
        headers=operator,
    )
    assert amended.status_code == 200 and amended.json()["version"] == 2


# --------------------------------------------------------------------------- lifecycle and events


async def test_lifecycle_versions_conflicts_and_events_on_recalls_topic(
    intake, make_recall_body, unique
) -> None:
    seller_id, headers, product = await _seller(intake, unique)
    second = unique("prod2")
    await intake.listing(second, [seller_id])

    draft = await intake.client.post(
        "/v1/recalls", json=make_recall_body(product, logistics_enrolled=True), headers=headers
    )
    assert draft.status_code == 201
    rid = draft.json()["recall_id"]
    assert (
        draft.json()["status"] == "draft"
        and draft.json()["version"] == 1
        and draft.json()["published_at"] is None
    )

    # a draft cannot be amended or closed
    amend_draft = await intake.client.post(
        f"/v1/recalls/{rid}/amendments",
        json={"rules": [{"product_ids": [product]}]},
        headers=headers,
    )
    assert (
        amend_draft.status_code == 409
        and amend_draft.json()["detail"]["error"] == "illegal_transition"
    )
    assert (
        await intake.client.post(f"/v1/recalls/{rid}/close", headers=headers)
    ).status_code == 409
    assert (await intake.client.get(f"/v1/recalls/{rid}", headers=headers)).json()["versions"] == []

    published = await intake.client.post(f"/v1/recalls/{rid}/publish", headers=headers)
    assert published.status_code == 200
    assert (
        published.json()["status"] == "published" and published.json()["published_at"] is not None
    )
    again = await intake.client.post(f"/v1/recalls/{rid}/publish", headers=headers)
    assert (
        again.status_code == 409
        and "cannot publish a recall that is published" in again.json()["detail"]["message"]
    )

    new_content = make_recall_body(
        product, title="Acme kettle KX-1 and KX-2 recall", severity="critical"
    )["content"]
    amended = await intake.client.post(
        f"/v1/recalls/{rid}/amendments",
        json={"content": new_content, "rules": [{"product_ids": [product, second]}]},
        headers=headers,
    )
    assert amended.status_code == 200, amended.text
    assert amended.json()["version"] == 2 and amended.json()["status"] == "published"
    assert amended.json()["content"]["severity"] == "critical"
    assert (
        amended.json()["published_at"] == published.json()["published_at"]
    )  # first publication stays

    closed = await intake.client.post(f"/v1/recalls/{rid}/close", headers=headers)
    assert (
        closed.status_code == 200
        and closed.json()["status"] == "closed"
        and closed.json()["closed_at"]
    )
    amend_closed = await intake.client.post(
        f"/v1/recalls/{rid}/amendments",
        json={"rules": [{"product_ids": [product]}]},
        headers=headers,
    )
    assert amend_closed.status_code == 409
    assert (
        await intake.client.post(f"/v1/recalls/{rid}/close", headers=headers)
    ).status_code == 409
    assert (
        await intake.client.post(f"/v1/recalls/{rid}/publish", headers=headers)
    ).status_code == 409

    got = (await intake.client.get(f"/v1/recalls/{rid}", headers=headers)).json()
    assert got["status"] == "closed" and got["version"] == 2
    assert [(v["version"], v["event_type"]) for v in got["versions"]] == [
        (1, "recall.published.v1"),
        (2, "recall.amended.v1"),
    ]
    assert [ev.ScopeRule.model_validate(r) for r in got["versions"][0]["recall"]["rules"]] == [
        ev.ScopeRule(product_ids=[product], seller_ids=[seller_id])
    ]  # a seller recalls its own units
    assert got["versions"][1]["recall"]["rules"][0]["product_ids"] == [product, second]
    assert got["versions"][0]["recall"]["content"]["severity"] == "high"

    # the outbox published exactly three events, in order, keyed by the recall id, with full
    # snapshots
    records = await read_topic(intake.topic("recalls.v1"), count=3, timeout=20)
    assert len(records) == 3
    assert {key for key, _, _ in records} == {rid.encode()}
    envs = [env for _, env, _ in records if env is not None]
    assert [e.type for e in envs] == [
        "recall.published.v1",
        "recall.amended.v1",
        "recall.closed.v1",
    ]
    assert [e.id for e in envs] == [
        f"{rid}:1:recall.published.v1",
        f"{rid}:2:recall.amended.v1",
        f"{rid}:2:recall.closed.v1",
    ]
    assert all(e.source == "/recall-alerts/recall-intake" and e.subject == rid for e in envs)
    pub, amd, cls = (parse(e) for e in envs)
    assert (
        isinstance(pub, RecallPublished)
        and isinstance(amd, RecallAmended)
        and isinstance(cls, RecallClosed)
    )
    assert (
        pub.recall.version == 1
        and pub.recall.seller_id == seller_id
        and pub.recall.logistics_enrolled is True
    )
    assert pub.recall.rules[0].product_ids == [product]
    assert pub.recall.content.title == "Acme kettle KX-1 recall"
    assert amd.recall.version == 2 and amd.recall.rules[0].product_ids == [product, second]
    assert (
        amd.recall.content.severity == "critical"
        and amd.recall.published_at == pub.recall.published_at
    )
    assert cls.recall.version == 2 and cls.recall.rules == amd.recall.rules
    assert cls.closed_at.isoformat().replace("+00:00", "Z")[:19] == closed.json()["closed_at"][:19]
    # the snapshot in the event is the one stored with the version
    assert amd.recall.model_dump(mode="json") == got["versions"][1]["recall"]
    await intake.outbox_drained()


async def test_amendment_without_content_keeps_the_current_content(
    intake, make_recall_body, unique
) -> None:
    seller_id, headers, product = await _seller(intake, unique)
    rid = (
        await intake.client.post(
            "/v1/recalls", json=make_recall_body(product, title="Original"), headers=headers
        )
    ).json()["recall_id"]
    await intake.client.post(f"/v1/recalls/{rid}/publish", headers=headers)
    narrowed = {"rules": [{"product_ids": [product], "seller_ids": [seller_id]}]}
    amended = await intake.client.post(
        f"/v1/recalls/{rid}/amendments", json=narrowed, headers=headers
    )
    assert amended.status_code == 200
    assert amended.json()["content"]["title"] == "Original" and amended.json()["rules"][0][
        "seller_ids"
    ] == [seller_id]
    amended3 = await intake.client.post(
        f"/v1/recalls/{rid}/amendments",
        json={"rules": [{"product_ids": [product]}]},
        headers=headers,
    )
    assert amended3.json()["version"] == 3 and amended3.json()["content"]["title"] == "Original"
    versions = (await intake.client.get(f"/v1/recalls/{rid}", headers=headers)).json()["versions"]
    assert [v["version"] for v in versions] == [1, 2, 3]


# --------------------------------------------------------------------------- idempotency


async def test_idempotency_key_replays_the_same_recall_and_refuses_a_different_body(
    intake, make_recall_body, unique
) -> None:
    _, headers, product = await _seller(intake, unique)
    key = {**headers, "Idempotency-Key": unique("idem")}
    first = await intake.client.post("/v1/recalls", json=make_recall_body(product), headers=key)
    assert first.status_code == 201 and "idempotent-replayed" not in first.headers
    replay = await intake.client.post("/v1/recalls", json=make_recall_body(product), headers=key)
    assert replay.status_code == 201
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json()["recall_id"] == first.json()["recall_id"] and replay.json() == first.json()

    different = await intake.client.post(
        "/v1/recalls", json=make_recall_body(product, title="Another"), headers=key
    )
    assert (
        different.status_code == 422
        and different.json()["detail"]["error"] == "idempotency_key_reused"
    )

    # without the key, the same body is a new recall
    fresh = await intake.client.post("/v1/recalls", json=make_recall_body(product), headers=headers)
    assert fresh.status_code == 201 and fresh.json()["recall_id"] != first.json()["recall_id"]
    assert await intake.scalar("SELECT count(*) FROM recalls") == 2


async def test_idempotency_keys_are_per_owner(intake, make_recall_body, unique) -> None:
    _, headers_a, product_a = await _seller(intake, unique)
    _, headers_b, product_b = await _seller(intake, unique)
    shared_key = unique("idem")
    a = await intake.client.post(
        "/v1/recalls",
        json=make_recall_body(product_a),
        headers={**headers_a, "Idempotency-Key": shared_key},
    )
    b = await intake.client.post(
        "/v1/recalls",
        json=make_recall_body(product_b),
        headers={**headers_b, "Idempotency-Key": shared_key},
    )
    assert a.status_code == b.status_code == 201
    assert a.json()["recall_id"] != b.json()["recall_id"] and "idempotent-replayed" not in b.headers


async def test_concurrent_identical_posts_make_exactly_one_recall(
    intake, make_recall_body, unique
) -> None:
    _, headers, product = await _seller(intake, unique)
    key = {**headers, "Idempotency-Key": unique("idem")}
    body = make_recall_body(product)
    responses = await asyncio.gather(
        *(intake.client.post("/v1/recalls", json=body, headers=key) for _ in range(10))
    )
    assert [r.status_code for r in responses] == [201] * 10, [
        r.text for r in responses if r.status_code != 201
    ]
    assert len({r.json()["recall_id"] for r in responses}) == 1
    assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in responses) == 9
    assert await intake.scalar("SELECT count(*) FROM recalls") == 1


# --------------------------------------------------------------------------- validation


async def test_invalid_bodies_answer_422_naming_the_field(intake, make_recall_body, unique) -> None:
    _, headers, product = await _seller(intake, unique)
    empty_rule = make_recall_body(product)
    empty_rule["rules"] = [{"product_ids": [product]}, {"seller_ids": ["x"]}]
    resp = await intake.client.post("/v1/recalls", json=empty_rule, headers=headers)
    assert resp.status_code == 422
    assert resp.json()["error"] == "validation_failed"
    assert (
        resp.json()["message"].startswith("rules.1:")
        and "at least one identifier" in resp.json()["message"]
    )

    bad_severity = make_recall_body(product, severity="apocalyptic")
    resp = await intake.client.post("/v1/recalls", json=bad_severity, headers=headers)
    assert resp.status_code == 422 and resp.json()["message"].startswith("content.severity:")

    no_rules = make_recall_body(product)
    no_rules["rules"] = []
    resp = await intake.client.post("/v1/recalls", json=no_rules, headers=headers)
    assert resp.status_code == 422 and "rules" in resp.json()["message"]

    bad_gtin = make_recall_body(product, gtins=("123",))
    resp = await intake.client.post("/v1/recalls", json=bad_gtin, headers=headers)
    assert resp.status_code == 422 and "rules[0].gtins[0]" in resp.json()["message"]

    extra_in_rule = make_recall_body(product)
    extra_in_rule["rules"][0]["lots"] = ["L1"]
    resp = await intake.client.post("/v1/recalls", json=extra_in_rule, headers=headers)
    assert resp.status_code == 422 and "rules.0.lots" in resp.json()["message"]

    not_json = await intake.client.post(
        "/v1/recalls", content=b"{nope", headers={**headers, "content-type": "application/json"}
    )
    assert not_json.status_code == 422
    assert await intake.scalar("SELECT count(*) FROM recalls") == 0


async def test_empty_rule_is_refused_on_amendment_too(intake, make_recall_body, unique) -> None:
    _, headers, product = await _seller(intake, unique)
    rid = (
        await intake.client.post("/v1/recalls", json=make_recall_body(product), headers=headers)
    ).json()["recall_id"]
    await intake.client.post(f"/v1/recalls/{rid}/publish", headers=headers)
    resp = await intake.client.post(
        f"/v1/recalls/{rid}/amendments", json={"rules": [{}]}, headers=headers
    )
    assert resp.status_code == 422 and resp.json()["message"].startswith("rules.0:")


# --------------------------------------------------------------------------- listing


async def test_pagination_walks_every_recall_once_and_status_filters(
    intake, make_recall_body, unique
) -> None:
    _, headers, product = await _seller(intake, unique)
    _, other_headers, other_product = await _seller(intake, unique)
    ids = []
    for i in range(7):
        r = await intake.client.post(
            "/v1/recalls", json=make_recall_body(product, title=f"Recall {i}"), headers=headers
        )
        ids.append(r.json()["recall_id"])
    await intake.client.post(
        "/v1/recalls", json=make_recall_body(other_product), headers=other_headers
    )
    for rid in ids[:3]:
        assert (
            await intake.client.post(f"/v1/recalls/{rid}/publish", headers=headers)
        ).status_code == 200

    seen: list[str] = []
    pages = 0
    cursor = None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = await intake.client.get("/v1/recalls", params=params, headers=headers)
        assert page.status_code == 200
        body = page.json()
        assert len(body["items"]) <= 3
        seen += [item["recall_id"] for item in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
        assert pages < 10
    assert pages == 3
    assert len(seen) == len(set(seen)) == 7 and set(seen) == set(ids)
    assert seen == list(reversed(ids))  # newest first

    exact = await intake.client.get("/v1/recalls", params={"limit": 7}, headers=headers)
    assert len(exact.json()["items"]) == 7 and exact.json()["next_cursor"] is None

    published = await intake.client.get(
        "/v1/recalls", params={"status": "published"}, headers=headers
    )
    assert {r["recall_id"] for r in published.json()["items"]} == set(ids[:3])
    assert all(r["status"] == "published" for r in published.json()["items"])
    drafts = await intake.client.get(
        "/v1/recalls", params={"status": "draft", "limit": 2}, headers=headers
    )
    draft_ids = [r["recall_id"] for r in drafts.json()["items"]]
    nxt = await intake.client.get(
        "/v1/recalls",
        params={"status": "draft", "limit": 2, "cursor": drafts.json()["next_cursor"]},
        headers=headers,
    )
    draft_ids += [r["recall_id"] for r in nxt.json()["items"]]
    assert draft_ids == list(reversed(ids[3:]))
    assert (
        await intake.client.get("/v1/recalls", params={"status": "closed"}, headers=headers)
    ).json()["items"] == []

    operator = {"X-Api-Key": await intake.operator_key()}
    everything = await intake.client.get("/v1/recalls", params={"limit": 200}, headers=operator)
    assert len(everything.json()["items"]) == 8


async def test_bad_cursor_limit_and_status_are_client_errors(
    intake, make_recall_body, unique
) -> None:
    _, headers, product = await _seller(intake, unique)
    await intake.client.post("/v1/recalls", json=make_recall_body(product), headers=headers)
    for cursor in ("garbage", "bm90LWEtY3Vyc29y", "!!!"):
        resp = await intake.client.get("/v1/recalls", params={"cursor": cursor}, headers=headers)
        assert resp.status_code == 422, (cursor, resp.text)  # not of the documented shape
        assert "cursor" in resp.text
    assert (
        await intake.client.get("/v1/recalls", params={"limit": 0}, headers=headers)
    ).status_code == 422
    assert (
        await intake.client.get("/v1/recalls", params={"limit": 201}, headers=headers)
    ).status_code == 422
    assert (
        await intake.client.get("/v1/recalls", params={"status": "archived"}, headers=headers)
    ).status_code == 422


async def test_model_numbers_unknown_yet_or_another_sellers(
    intake, make_recall_body, unique
) -> None:
    _, key = await intake.seller_key()
    other, _ = await intake.seller_key()
    headers = {"X-Api-Key": key}
    model = unique("KX").upper()
    body = make_recall_body()
    body["rules"] = [{"model_numbers": [model]}]

    early = await intake.client.post("/v1/recalls", json=body, headers=headers)
    assert early.status_code == 409, early.text
    assert early.json()["detail"]["error"] == "not_known_yet"
    assert early.json()["detail"]["message"].startswith("rules[0].model_numbers[0]:")

    lamp = unique("lamp")
    listing = ev.ListingUpdated(
        product_id=lamp, title="Lamp", seller_ids=[other], model_numbers=[model]
    )
    env = envelope.wrap(listing, source="/tests/catalog")
    await intake.producer.send_and_wait(
        intake.topic(listing.topic),
        value=env.data,
        key=listing.partition_key().encode(),
        headers=env.headers(),
    )
    await intake.listing_seen(lamp, other)
    refused = await intake.client.post("/v1/recalls", json=body, headers=headers)
    assert refused.status_code == 422, refused.text
    assert refused.json()["detail"]["error"] == "not_your_product"
