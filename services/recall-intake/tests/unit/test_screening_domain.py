"""Catalog screening's scoring, free of I/O: how sure a listing is the recalled product."""

from __future__ import annotations

from recall_intake.domain import (
    GTIN_AND_MODEL,
    GTIN_MATCH,
    MODEL_NO_BRAND,
    MODEL_OTHER_BRAND,
    MODEL_WITH_BRAND,
    ScreenedListing,
    ScreenedRecall,
    brand_key,
    confidence_level,
    screen_listing,
)

GTIN, OTHER_GTIN = "00012345678905", "00011110911285"
RECALL = ScreenedRecall(
    product_ids=frozenset({"p-named"}),
    gtins=frozenset({GTIN}),
    model_keys=frozenset({"kx1"}),
    brand="Acme Inc.",
)


def listing(product_id: str = "p-1", brand: str = "", gtins=(), models=()) -> ScreenedListing:
    return ScreenedListing(product_id, brand, tuple(gtins), tuple(models))


def test_a_shared_gtin_is_a_high_confidence_candidate() -> None:
    found = screen_listing(RECALL, listing(gtins=[GTIN, OTHER_GTIN]))
    assert found is not None
    assert found.confidence == GTIN_MATCH and found.reasons == (f"GTIN {GTIN}",)
    assert confidence_level(found.confidence) == "high"


def test_a_gtin_and_the_model_of_the_same_brand_corroborate_each_other() -> None:
    found = screen_listing(RECALL, listing(brand="ACME inc", gtins=[GTIN], models=["kx1"]))
    assert found is not None and found.confidence == GTIN_AND_MODEL
    assert len(found.reasons) == 2


def test_the_model_is_as_good_as_its_brand() -> None:
    same = screen_listing(RECALL, listing(brand="acme-inc", models=["kx1"]))
    unknown = screen_listing(RECALL, listing(brand="", models=["kx1"]))
    other = screen_listing(RECALL, listing(brand="Zenith", models=["kx1"]))
    assert same is not None and same.confidence == MODEL_WITH_BRAND
    assert unknown is not None and unknown.confidence == MODEL_NO_BRAND
    assert other is not None and other.confidence == MODEL_OTHER_BRAND
    assert "Zenith" in other.reasons[0]
    assert [confidence_level(c.confidence) for c in (same, unknown, other)] == [
        "high",
        "medium",
        "low",
    ]


def test_a_recall_without_a_brand_compares_models_alone() -> None:
    brandless = RECALL._replace(brand="")
    found = screen_listing(brandless, listing(brand="Acme", models=["kx1"]))
    assert found is not None and found.confidence == MODEL_NO_BRAND


def test_nothing_shared_is_no_candidate_and_a_named_product_is_already_in_scope() -> None:
    assert screen_listing(RECALL, listing(gtins=[OTHER_GTIN], models=["kx2"])) is None
    assert screen_listing(RECALL, listing("p-named", gtins=[GTIN])) is None


def test_brands_compare_without_case_spaces_or_punctuation() -> None:
    assert brand_key("Acme Inc.") == brand_key("ACME inc") == "acmeinc"
