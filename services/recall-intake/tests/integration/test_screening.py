"""Catalog screening on a real PostgreSQL and Kafka: listings reach the read model on
catalog.listings.v1; an operator's draft and an imported regulator record are screened into
candidates with a confidence; an operator confirms or dismisses them in the review queue and
publishes the draft with the confirmed listings in its scope (read back from recalls.v1); a listing
the catalog sends after a draft was screened is screened against it on arrival, once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from recall_intake.importers.reader import open_records
from recall_shared import envelope
from recall_shared import events as ev
from recall_shared.envelope import parse
from recall_shared.testing import eventually, read_topic

pytestmark = pytest.mark.integration

GTIN = "00012345678905"
OPENFDA = (
    Path(__file__).resolve().parents[1]
    / "data"
    / "regulators"
    / "openfda_res_ucm308307_enforcement_2012-06.jsonl"
)


async def list_product(intake: Any, listing: ev.ListingUpdated) -> None:
    env = envelope.wrap(listing, source="/tests/catalog")
    await intake.producer.send_and_wait(
        intake.topic(listing.topic),
        value=env.data,
        key=listing.partition_key().encode(),
        headers=env.headers(),
    )
    await intake.listing_seen(listing.product_id, listing.seller_ids[0])


async def test_a_draft_is_screened_reviewed_and_published_for_the_confirmed_listings(
    intake: Any, unique: Any
) -> None:
    operator = {"X-Api-Key": await intake.operator_key()}
    seller_a, seller_b = unique("seller"), unique("seller")
    by_gtin, by_model, other_brand, unrelated = (unique("p") for _ in range(4))
    for listing in (
        ev.ListingUpdated(product_id=by_gtin, title="Kettle", gtins=[GTIN], seller_ids=[seller_a]),
        ev.ListingUpdated(
            product_id=by_model,
            title="Kettle (import)",
            brand="ACME",
            model_numbers=["KX-1"],
            seller_ids=[seller_b],
        ),
        ev.ListingUpdated(
            product_id=other_brand,
            title="Zenith kettle",
            brand="Zenith",
            model_numbers=["KX 1"],
            seller_ids=[seller_b],
        ),
        ev.ListingUpdated(product_id=unrelated, title="Lamp", seller_ids=[seller_a]),
    ):
        await list_product(intake, listing)

    body = {
        "content": {
            "title": "Acme kettle KX-1 recall",
            "brand": "Acme",
            "hazard": "The base can overheat and cause burns.",
            "severity": "high",
            "stop_using": "Unplug the kettle and stop using it.",
            "remedies": [{"type": "refund_on_destruction"}],
        },
        "rules": [{"gtins": [GTIN], "model_numbers": ["KX-1"]}],
    }
    created = await intake.client.post("/v1/recalls", json=body, headers=operator)
    assert created.status_code == 201, created.text
    recall_id = created.json()["recall_id"]

    queue = await intake.client.get(
        "/v1/operator/screening-candidates",
        params={"recall_id": recall_id, "status": "pending"},
        headers=operator,
    )
    assert queue.status_code == 200, queue.text
    found = {c["product_id"]: c for c in queue.json()["items"]}
    assert set(found) == {by_gtin, by_model, other_brand}
    assert found[by_gtin]["level"] == "high" and found[by_gtin]["seller_ids"] == [seller_a]
    assert found[by_model]["level"] == "high"
    assert found[other_brand]["level"] == "low"

    early = await intake.client.post(
        f"/v1/operator/recalls/{recall_id}/screened-publication", headers=operator
    )
    assert early.status_code == 409 and "pending" in early.text
    path = "/v1/operator/screening-candidates/{}/{}"
    for product, decision in (
        (by_gtin, "confirmation"),
        (by_model, "confirmation"),
        (other_brand, "dismissal"),
    ):
        r = await intake.client.post(
            path.format(found[product]["candidate_id"], decision), json={}, headers=operator
        )
        assert r.status_code == 200, r.text
    repeat = await intake.client.post(
        path.format(found[by_gtin]["candidate_id"], "confirmation"), json={}, headers=operator
    )
    assert repeat.json()["status"] == "confirmed"

    published = await intake.client.post(
        f"/v1/operator/recalls/{recall_id}/screened-publication", headers=operator
    )
    assert published.status_code == 200, published.text
    assert published.json()["status"] == "published"
    await intake.outbox_drained()
    records = await read_topic(intake.topic("recalls.v1"), count=1, timeout=20)
    [event] = [parse(env) for _, env, _ in records if env is not None]
    assert isinstance(event, ev.RecallPublished) and event.recall.recall_id == recall_id
    assert sorted(event.recall.rules[-1].product_ids) == sorted([by_gtin, by_model])
    assert other_brand not in {p for r in event.recall.rules for p in r.product_ids}


async def test_an_imported_regulator_record_is_screened(intake: Any, unique: Any) -> None:
    operator = {"X-Api-Key": await intake.operator_key()}
    record = next(r for r in open_records(OPENFDA)[1] if "F-1398-2012" in r["product-description"])
    listed = unique("p")
    await list_product(
        intake,
        ev.ListingUpdated(
            product_id=listed, title="Cheese", gtins=["011110911285"], seller_ids=[unique("s")]
        ),
    )
    created = await intake.client.post("/v1/imports/openfda", json=record, headers=operator)
    assert created.status_code == 201, created.text
    recall_id = created.json()["recall"]["recall_id"]
    queue = await intake.client.get(
        "/v1/operator/screening-candidates", params={"recall_id": recall_id}, headers=operator
    )
    [candidate] = queue.json()["items"]
    assert candidate["product_id"] == listed and candidate["reasons"] == ["GTIN 00011110911285"]

    # A listing the catalog sends later is screened on arrival; screening again finds the same.
    later = unique("p")
    await list_product(
        intake,
        ev.ListingUpdated(
            product_id=later, title="Cheese", gtins=["00011110911285"], seller_ids=[unique("s")]
        ),
    )
    again = await intake.client.post(
        f"/v1/operator/recalls/{recall_id}/screening", headers=operator
    )
    assert again.json() == {"recall_id": recall_id, "candidates": 2, "pending": 2}


async def test_a_listing_that_comes_after_the_screening_is_screened_on_arrival(
    intake: Any, unique: Any
) -> None:
    operator = {"X-Api-Key": await intake.operator_key()}
    gtin = "04006381333931"
    body = {
        "content": {
            "title": "Acme toaster T-9 recall",
            "brand": "Acme",
            "hazard": "The toaster can overheat.",
            "severity": "high",
            "stop_using": "Unplug the toaster.",
            "remedies": [{"type": "refund_on_destruction"}],
        },
        "rules": [{"gtins": [gtin], "model_numbers": ["T-9"]}],
    }
    created = await intake.client.post("/v1/recalls", json=body, headers=operator)
    assert created.status_code == 201, created.text
    recall_id = created.json()["recall_id"]

    async def candidates() -> dict[str, dict[str, Any]]:
        r = await intake.client.get(
            "/v1/operator/screening-candidates", params={"recall_id": recall_id}, headers=operator
        )
        return {c["product_id"]: c for c in r.json()["items"]}

    assert await candidates() == {}  # nothing in the catalog yet
    by_gtin, by_model, unrelated = unique("p"), unique("p"), unique("p")
    seller = unique("s")
    await list_product(
        intake,
        ev.ListingUpdated(product_id=by_gtin, title="Toaster", gtins=[gtin], seller_ids=[seller]),
    )
    await list_product(
        intake,
        ev.ListingUpdated(
            product_id=by_model,
            title="Toaster T9",
            brand="ACME",
            model_numbers=["T9"],
            seller_ids=[seller],
        ),
    )
    await list_product(
        intake, ev.ListingUpdated(product_id=unrelated, title="Lamp", seller_ids=[seller])
    )
    found = await candidates()
    assert set(found) == {by_gtin, by_model}
    assert found[by_gtin]["reasons"] == [f"GTIN {gtin}"] and found[by_gtin]["status"] == "pending"
    assert found[by_model]["level"] == "high"

    # Dismissed, then sent again by the catalog: still one candidate, and still dismissed.
    dismissed = await intake.client.post(
        f"/v1/operator/screening-candidates/{found[by_gtin]['candidate_id']}/dismissal",
        json={},
        headers=operator,
    )
    assert dismissed.status_code == 200, dismissed.text
    await list_product(
        intake,
        ev.ListingUpdated(
            product_id=by_gtin, title="Toaster (new photo)", gtins=[gtin], seller_ids=[seller]
        ),
    )

    async def retitled() -> bool:
        title = await intake.scalar("SELECT title FROM listings WHERE product_id = :p", p=by_gtin)
        return title == "Toaster (new photo)"

    await eventually(retitled, timeout=20)
    again = await candidates()
    assert set(again) == {by_gtin, by_model}
    assert again[by_gtin]["status"] == "dismissed"
    assert again[by_gtin]["candidate_id"] == found[by_gtin]["candidate_id"]
