"""The notice items of a recall through intake's API: accepted and published with the recall,
checked (a 422 naming the field), and what is still missing reported, never refused."""

from __future__ import annotations

import pytest

from recall_shared import events as ev
from recall_shared.envelope import parse
from recall_shared.testing import read_topic

pytestmark = pytest.mark.integration

ITEMS = {
    "brand": "Acme",
    "identifier_location": "The model and lot number are printed under the base.",
    "identifier_location_image": "https://img.example/label.jpg",
    "sold": {"start": "2025-01-01", "end": "2025-09-30"},
    "sale_channels": ["online at shop.example"],
    "incidents": "12 reports of overheating, 2 minor burns.",
    "incidents_reported": 12,
    "injuries_reported": 2,
    "helpline_phone": "+49 800 123 4567",
    "helpline_url": "https://acme.example/recall",
    "units_affected": 4000,
}


async def test_a_recall_with_every_item_is_published_with_them(
    intake, make_recall_body, unique
) -> None:
    seller_id, key = await intake.seller_key()
    product = unique("prod")
    await intake.listing(product, [seller_id])
    headers = {"X-Api-Key": key}
    body = make_recall_body(product)
    body["content"].update(ITEMS, product_description="A 1.7 l kettle.")
    created = await intake.client.post("/v1/recalls", json=body, headers=headers)
    assert created.status_code == 201, created.text
    assert created.json()["missing_notice_items"] == []
    rid = created.json()["recall_id"]
    published = await intake.client.post(f"/v1/recalls/{rid}/publish", headers=headers)
    assert published.status_code == 200, published.text
    (_, env, _), *_ = await read_topic(intake.topic("recalls.v1"), count=1, timeout=20)
    assert env is not None
    event = parse(env)
    assert isinstance(event, ev.RecallPublished)
    content = event.recall.content
    assert content.brand == "Acme" and content.helpline_phone == "+49 800 123 4567"
    assert content.sold == ev.DateWindow.model_validate(ITEMS["sold"])


async def test_missing_items_are_reported_not_refused(intake, make_recall_body, unique) -> None:
    seller_id, key = await intake.seller_key()
    product = unique("prod")
    await intake.listing(product, [seller_id])
    created = await intake.client.post(
        "/v1/recalls", json=make_recall_body(product), headers={"X-Api-Key": key}
    )
    assert created.status_code == 201, created.text
    assert {"brand", "helpline", "sale_period", "incidents"} <= set(
        created.json()["missing_notice_items"]
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("helpline_phone", "call us any time"),
        ("helpline_url", "http://acme.example/recall"),
        ("identifier_location_image", "ftp://img.example/label.jpg"),
        ("incidents_reported", -1),
        ("sold", {"start": "2025-09-30", "end": "2025-01-01"}),
    ],
)
async def test_a_bad_item_is_a_422_naming_it(
    intake, make_recall_body, unique, field: str, value: object
) -> None:
    seller_id, key = await intake.seller_key()
    product = unique("prod")
    await intake.listing(product, [seller_id])
    body = make_recall_body(product)
    body["content"][field] = value
    resp = await intake.client.post("/v1/recalls", json=body, headers={"X-Api-Key": key})
    assert resp.status_code == 422, resp.text
    assert resp.json()["message"].startswith(f"content.{field}"), resp.json()
