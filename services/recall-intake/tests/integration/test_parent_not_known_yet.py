"""A parent product no listing names yet is "not known yet, retry" (docs/decisions/0008), like any
other product: its listing may be on its way on catalog.listings.v1."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

pytestmark = pytest.mark.integration


async def test_an_unknown_parent_is_409_not_known_yet_until_its_listing_is_read(
    intake: Any, make_recall_body: Callable[..., dict[str, Any]], unique: Callable[[str], str]
) -> None:
    seller_id, _ = await intake.seller_key()
    headers = {"X-Api-Key": await intake.operator_key()}
    parent = unique("kettle")
    body = make_recall_body(unique("other"))
    body["rules"] = [{"parent_product_ids": [parent]}]

    early = await intake.client.post("/v1/recalls", json=body, headers=headers)
    assert early.status_code == 409, early.text
    assert early.headers["Retry-After"] == "2"
    detail = early.json()["detail"]
    assert detail["error"] == "not_known_yet"
    assert detail["message"].startswith(f"rules[0].parent_product_ids[0]: no product {parent!r}")

    await intake.listing(parent, [seller_id])
    ok = await intake.client.post("/v1/recalls", json=body, headers=headers)
    assert ok.status_code == 201, ok.text
    assert ok.json()["rules"][0]["product_ids"] == [parent]
