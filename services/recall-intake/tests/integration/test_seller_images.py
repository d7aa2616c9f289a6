"""A seller's recall may show images only over https: an email client fetching a plain-http image
tells its host who opened the notice."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    "url",
    ["http://tracker.example/open.gif", "//tracker.example/x.jpg", "data:image/gif;base64,R0lG"],
)
async def test_a_recall_with_a_non_https_image_is_refused_naming_the_field(
    intake, make_recall_body, unique, url: str
) -> None:
    seller_id, key = await intake.seller_key()
    product = unique("prod")
    await intake.listing(product, [seller_id])
    body = make_recall_body(product)
    body["content"]["images"] = ["https://img.example/kettle.jpg", url]

    refused = await intake.client.post("/v1/recalls", json=body, headers={"X-Api-Key": key})
    assert refused.status_code == 422, refused.text
    assert "images" in refused.text and "must be an https:// URL" in refused.text
    assert await intake.scalar("SELECT count(*) FROM recalls") == 0

    body["content"]["images"] = ["https://img.example/kettle.jpg", "HTTPS://img.example/k2.jpg"]
    created = await intake.client.post("/v1/recalls", json=body, headers={"X-Api-Key": key})
    assert created.status_code == 201, created.text
    assert created.json()["content"]["images"] == body["content"]["images"]
