"""Stop-sales and holds, free of I/O: how a recall reaches a seller's listing, and what to announce
so consumers hold exactly what is true now."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from purchase_matcher.domain import (
    CONFIRMED,
    ListingFacts,
    Reach,
    Recorded,
    listing_reach,
    offers_reached,
    settle,
    transition_id,
)
from recall_shared import events as ev
from recall_shared.sample_events import recall_snapshot

NOW = datetime(2026, 3, 1, tzinfo=UTC)
GTIN = "00012345678905"


def listing(**kw: Any) -> ListingFacts:
    return ListingFacts(
        product_id="p-1",
        parent_product_id=None,
        gtins=(),
        model_keys=(),
        seller_ids=("s-1", "s-2"),
    )._replace(**kw)


def recall(*rules: ev.ScopeRule) -> ev.RecallSnapshot:
    return recall_snapshot(*rules, published_at=NOW)


def test_any_identifier_the_listing_carries_reaches_it() -> None:
    by_gtin = [ev.ScopeRule(gtins=[GTIN])]
    by_model = [ev.ScopeRule(model_numbers=["kx 1"])]
    assert listing_reach(by_gtin, listing(gtins=("x", GTIN)), "s-1", NOW) == CONFIRMED
    assert listing_reach(by_model, listing(model_keys=("KX1",)), "s-1", NOW) == CONFIRMED
    assert listing_reach(by_gtin, listing(model_keys=("KX1",)), "s-1", NOW) is None


def test_a_variant_is_reached_through_a_parent_the_rule_names_as_parent() -> None:
    variant = listing(product_id="v-9", parent_product_id="parent")
    as_parent = [ev.ScopeRule(product_ids=["other"], parent_product_ids=["parent"])]
    as_product = [ev.ScopeRule(product_ids=["parent"])]
    assert listing_reach(as_parent, variant, "s-1", NOW) == CONFIRMED
    assert listing_reach(as_product, variant, "s-1", NOW) is None  # a product, not its variants


def test_what_a_listing_cannot_say_makes_it_possibly_affected() -> None:
    rules = [
        ev.ScopeRule(product_ids=["p-1"], lots=ev.CodeRule(values=["L1"])),
        ev.ScopeRule(product_ids=["p-1"], manufactured=ev.DateWindow(end=date(2025, 1, 1))),
    ]
    assert listing_reach(rules, listing(), "s-1", NOW) == Reach(
        "possibly_affected", ("lot", "manufacture date")
    )


def test_seller_scope_and_a_sale_window_over_decide_which_offers_stop() -> None:
    scoped = recall(ev.ScopeRule(product_ids=["p-1"], seller_ids=["s-2"]))
    assert offers_reached(scoped, [listing()], NOW) == {("p-1", "s-2"): CONFIRMED}
    past = recall(ev.ScopeRule(product_ids=["p-1"], purchased=ev.DateWindow(end=date(2026, 1, 1))))
    assert offers_reached(past, [listing()], NOW) == {}


def test_settle_declares_what_is_new_or_changed_and_lifts_what_is_gone() -> None:
    possibly = Reach("possibly_affected", ("lot",))
    recorded = {
        ("same",): Recorded(True, "confirmed", ()),
        ("changed",): Recorded(True, "confirmed", ()),
        ("gone",): Recorded(True, "confirmed", ()),
        ("lifted before",): Recorded(False, "confirmed", ()),
        ("back",): Recorded(False, "confirmed", ()),
    }
    wanted = {
        ("same",): CONFIRMED,
        ("changed",): possibly,
        ("new",): CONFIRMED,
        ("back",): CONFIRMED,
    }
    assert settle(recorded, wanted) == [
        (("back",), "declare", CONFIRMED),
        (("changed",), "declare", possibly),
        (("gone",), "lift", None),
        (("new",), "declare", CONFIRMED),
    ]


def test_transition_ids_are_deterministic_and_fit_the_outbox() -> None:
    long = ("r" * 36, "p" * 100, "s" * 100)
    assert transition_id("stop-sale", long, 12) == transition_id("stop-sale", long, 12)
    assert transition_id("stop-sale", long, 12) != transition_id("stop-sale", long, 13)
    assert len(transition_id("stop-sale", long, 2**31 - 1)) <= 64


@pytest.mark.parametrize(
    ("kind", "parts", "transitions", "expected"),
    [
        ("stop-sale", ("r-1", "p-1"), 1, "stop-sale:4419e32e-8a76-5f5d-bfb7-51272e3b262a:1"),
        ("hold", ("r-1", "s-1", "p:9"), 3, "hold:6cd4531d-d4f0-5b69-ae29-86f649f90bc5:3"),
        (
            "stop-sale",
            ("x" * 200, "ü/é"),
            2**31 - 1,
            "stop-sale:72a1065a-9eb1-5223-a44d-d193fc90402b:2147483647",
        ),
        ("hold", (), 0, "hold:c86617e8-df5f-54fe-9e9f-5ab9aabd7fdb:0"),
    ],
)
def test_transition_ids_are_the_ones_already_in_outboxes(
    kind: str, parts: tuple[str, ...], transitions: int, expected: str
) -> None:
    """The ids the hand-written recipe gave before transition_id used recall_shared.event_ids: a
    re-announcement after an upgrade must still be deduplicated by the inbox."""
    assert transition_id(kind, parts, transitions) == expected
