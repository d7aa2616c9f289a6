"""Who may call what: every route, for seller A, seller B, an operator, and no, bad or revoked
keys."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.integration

ROUTE_NAMES = (
    "create",
    "list",
    "get",
    "edit",
    "publish",
    "amend",
    "close",
    "create_seller",
    "issue_key",
    "revoke_key",
)


def routes(
    recall_id: str, key_id: str, product_id: str, body: Any, unique: Any
) -> list[tuple[str, str, str, Any]]:
    """Every route of the API, in an order that walks a recall through its lifecycle."""
    return [
        ("create", "POST", "/v1/recalls", body(product_id)),
        ("list", "GET", "/v1/recalls", None),
        ("get", "GET", f"/v1/recalls/{recall_id}", None),
        ("edit", "PATCH", f"/v1/recalls/{recall_id}", {"logistics_enrolled": True}),
        ("publish", "POST", f"/v1/recalls/{recall_id}/publish", None),
        (
            "amend",
            "POST",
            f"/v1/recalls/{recall_id}/amendments",
            {"rules": [{"product_ids": [product_id]}]},
        ),
        ("close", "POST", f"/v1/recalls/{recall_id}/close", None),
        (
            "create_seller",
            "POST",
            "/v1/operator/sellers",
            {"seller_id": unique("newseller"), "name": "New"},
        ),
        ("issue_key", "POST", "/v1/operator/api-keys", {"role": "operator", "label": "ops"}),
        ("revoke_key", "DELETE", f"/v1/operator/api-keys/{key_id}", None),
    ]


async def call_all(
    intake, headers: dict[str, str], recall_id: str, key_id: str, product_id: str, body, unique
):
    statuses: dict[str, int] = {}
    responses = {}
    for name, method, path, payload in routes(recall_id, key_id, product_id, body, unique):
        resp = await intake.client.request(method, path, json=payload, headers=headers)
        statuses[name] = resp.status_code
        responses[name] = resp
    return statuses, responses


@pytest.fixture
async def world(intake, make_recall_body, unique):
    """Seller A with a draft recall on its product, seller B with its own product, an operator, a
    revoked key, and a spare key for the revoke route."""
    seller_a, key_a = await intake.seller_key()
    seller_b, key_b = await intake.seller_key()
    operator = await intake.operator_key()
    product_a, product_b = unique("prod-a"), unique("prod-b")
    await intake.listing(product_a, [seller_a])
    await intake.listing(product_b, [seller_b])

    created = await intake.client.post(
        "/v1/recalls", json=make_recall_body(product_a), headers={"X-Api-Key": key_a}
    )
    assert created.status_code == 201, created.text
    recall_id = created.json()["recall_id"]

    revoked = await intake.client.post(
        "/v1/operator/api-keys",
        json={"role": "seller", "seller_id": seller_a},
        headers={"X-Api-Key": operator},
    )
    assert revoked.status_code == 201, revoked.text
    gone = await intake.client.delete(
        f"/v1/operator/api-keys/{revoked.json()['key_id']}", headers={"X-Api-Key": operator}
    )
    assert gone.status_code == 204

    spare = await intake.client.post(
        "/v1/operator/api-keys", json={"role": "operator"}, headers={"X-Api-Key": operator}
    )
    assert spare.status_code == 201
    return {
        "seller_a": seller_a,
        "key_a": key_a,
        "seller_b": seller_b,
        "key_b": key_b,
        "operator": operator,
        "product_a": product_a,
        "product_b": product_b,
        "recall_id": recall_id,
        "revoked_key": revoked.json()["api_key"],
        "spare_key_id": spare.json()["key_id"],
    }


@pytest.mark.parametrize(
    "credential",
    [
        pytest.param(None, id="no-key"),
        pytest.param("bad", id="bad-key"),
        pytest.param("revoked", id="revoked-key"),
    ],
)
async def test_every_route_refuses_missing_bad_and_revoked_keys(
    intake, world, make_recall_body, unique, credential
) -> None:
    if credential is None:
        headers: dict[str, str] = {}
    elif credential == "bad":
        headers = {"X-Api-Key": "rak_" + "x" * 43}
    else:
        headers = {"X-Api-Key": world["revoked_key"]}
    statuses, responses = await call_all(
        intake,
        headers,
        world["recall_id"],
        world["spare_key_id"],
        world["product_a"],
        make_recall_body,
        unique,
    )
    assert statuses == dict.fromkeys(ROUTE_NAMES, 401)
    assert all(r.headers.get("www-authenticate") == "ApiKey" for r in responses.values())
    # nothing happened: the recall is still a draft, the spare key still works, no recall was
    # created
    assert await intake.scalar("SELECT count(*) FROM recalls") == 1
    assert await intake.scalar("SELECT status FROM recalls") == "draft"
    assert (
        await intake.scalar(
            "SELECT revoked_at FROM api_keys WHERE key_id = :k", k=world["spare_key_id"]
        )
        is None
    )
    assert await intake.scalar("SELECT count(*) FROM outbox") == 0


async def test_seller_a_runs_its_own_recall_but_not_operator_routes(
    intake, world, make_recall_body, unique
) -> None:
    statuses, responses = await call_all(
        intake,
        {"X-Api-Key": world["key_a"]},
        world["recall_id"],
        world["spare_key_id"],
        world["product_a"],
        make_recall_body,
        unique,
    )
    assert statuses == {
        "create": 201,
        "list": 200,
        "get": 200,
        "edit": 200,
        "publish": 200,
        "amend": 200,
        "close": 200,
        "create_seller": 403,
        "issue_key": 403,
        "revoke_key": 403,
    }
    assert responses["create"].json()["seller_id"] == world["seller_a"]
    listed = {r["recall_id"] for r in responses["list"].json()["items"]}
    assert listed == {world["recall_id"], responses["create"].json()["recall_id"]}
    assert (
        responses["close"].json()["status"] == "closed"
        and responses["close"].json()["version"] == 2
    )
    # the operator-only effects did not happen
    assert (
        await intake.scalar(
            "SELECT revoked_at FROM api_keys WHERE key_id = :k", k=world["spare_key_id"]
        )
        is None
    )
    assert await intake.scalar("SELECT count(*) FROM sellers") == 2
    assert await intake.scalar("SELECT count(*) FROM api_keys WHERE role = 'operator'") == 2


async def test_seller_b_cannot_see_or_touch_seller_a_recall(
    intake, world, make_recall_body, unique
) -> None:
    statuses, responses = await call_all(
        intake,
        {"X-Api-Key": world["key_b"]},
        world["recall_id"],
        world["spare_key_id"],
        world["product_b"],
        make_recall_body,
        unique,
    )
    assert statuses == {
        "create": 201,
        "list": 200,
        "get": 404,
        "edit": 404,
        "publish": 404,
        "amend": 404,
        "close": 404,
        "create_seller": 403,
        "issue_key": 403,
        "revoke_key": 403,
    }
    assert responses["create"].json()["seller_id"] == world["seller_b"]
    listed = {r["recall_id"] for r in responses["list"].json()["items"]}
    assert listed == {responses["create"].json()["recall_id"]}  # not A's
    # indistinguishable from a recall that does not exist
    missing = await intake.client.get(
        "/v1/recalls/00000000-0000-0000-0000-000000000000", headers={"X-Api-Key": world["key_b"]}
    )
    assert missing.status_code == 404 and responses["get"].json() == missing.json()
    assert (
        await intake.scalar("SELECT status FROM recalls WHERE recall_id = :r", r=world["recall_id"])
        == "draft"
    )
    assert await intake.scalar("SELECT count(*) FROM outbox") == 0


async def test_operator_may_do_everything(intake, world, make_recall_body, unique) -> None:
    # an operator may name any product, even one nobody sells
    statuses, responses = await call_all(
        intake,
        {"X-Api-Key": world["operator"]},
        world["recall_id"],
        world["spare_key_id"],
        unique("nobody-sells"),
        make_recall_body,
        unique,
    )
    assert statuses == {
        "create": 201,
        "list": 200,
        "get": 200,
        "edit": 200,
        "publish": 200,
        "amend": 200,
        "close": 200,
        "create_seller": 201,
        "issue_key": 201,
        "revoke_key": 204,
    }
    assert (
        responses["create"].json()["seller_id"] is None
    )  # an operator recall belongs to no seller
    listed = {r["recall_id"] for r in responses["list"].json()["items"]}
    assert {world["recall_id"], responses["create"].json()["recall_id"]} <= listed
    # A's recall stays A's after the operator worked on it
    assert responses["close"].json()["seller_id"] == world["seller_a"]
    assert (
        await intake.scalar(
            "SELECT revoked_at FROM api_keys WHERE key_id = :k", k=world["spare_key_id"]
        )
        is not None
    )
    issued = responses["issue_key"].json()
    assert issued["api_key"].startswith(issued["display_prefix"]) and issued["role"] == "operator"
    # only the hash is stored
    assert (
        await intake.scalar(
            "SELECT count(*) FROM api_keys WHERE key_hash = :k", k=issued["api_key"]
        )
        == 0
    )
    # the new key works
    me = await intake.client.get("/v1/recalls", headers={"X-Api-Key": issued["api_key"]})
    assert me.status_code == 200


async def test_revoked_key_stops_working_at_once_and_revoke_is_idempotent(intake, world) -> None:
    op = {"X-Api-Key": world["operator"]}
    issued = (
        await intake.client.post(
            "/v1/operator/api-keys",
            json={"role": "seller", "seller_id": world["seller_b"]},
            headers=op,
        )
    ).json()
    assert (
        await intake.client.get("/v1/recalls", headers={"X-Api-Key": issued["api_key"]})
    ).status_code == 200
    assert (
        await intake.client.delete(f"/v1/operator/api-keys/{issued['key_id']}", headers=op)
    ).status_code == 204
    assert (
        await intake.client.get("/v1/recalls", headers={"X-Api-Key": issued["api_key"]})
    ).status_code == 401
    assert (
        await intake.client.delete(f"/v1/operator/api-keys/{issued['key_id']}", headers=op)
    ).status_code == 204
    assert (
        await intake.client.delete("/v1/operator/api-keys/no-such-key", headers=op)
    ).status_code == 404


async def test_seller_comes_from_the_key_never_the_body(intake, world, make_recall_body) -> None:
    # naming another seller in the body is refused outright (extra fields are forbidden)
    resp = await intake.client.post(
        "/v1/recalls",
        json=make_recall_body(world["product_a"], seller_id=world["seller_b"]),
        headers={"X-Api-Key": world["key_a"]},
    )
    assert resp.status_code == 422, resp.text
    assert "seller_id" in resp.json()["message"]
    # and a key issued for seller B through the operator API acts as B, whatever it sends
    issued = await intake.client.post(
        "/v1/operator/api-keys",
        json={"role": "seller", "seller_id": world["seller_b"]},
        headers={"X-Api-Key": world["operator"]},
    )
    assert issued.status_code == 201 and issued.json()["seller_id"] == world["seller_b"]
    created = await intake.client.post(
        "/v1/recalls",
        json=make_recall_body(world["product_b"]),
        headers={"X-Api-Key": issued.json()["api_key"]},
    )
    assert created.status_code == 201 and created.json()["seller_id"] == world["seller_b"]
    assert (
        await intake.scalar(
            "SELECT count(*) FROM recalls WHERE seller_id = :s", s=world["seller_b"]
        )
        == 1
    )


async def test_operator_key_api_validates_roles_and_sellers(intake, world) -> None:
    op = {"X-Api-Key": world["operator"]}
    no_seller = await intake.client.post(
        "/v1/operator/api-keys", json={"role": "seller"}, headers=op
    )
    assert no_seller.status_code == 422
    op_with_seller = await intake.client.post(
        "/v1/operator/api-keys",
        json={"role": "operator", "seller_id": world["seller_a"]},
        headers=op,
    )
    assert op_with_seller.status_code == 422
    unknown = await intake.client.post(
        "/v1/operator/api-keys", json={"role": "seller", "seller_id": "no-such-seller"}, headers=op
    )
    assert unknown.status_code == 409 and unknown.json()["error"] == "unknown_seller", unknown.text
    dup = await intake.client.post(
        "/v1/operator/sellers", json={"seller_id": world["seller_a"], "name": "again"}, headers=op
    )
    assert dup.status_code == 409
