"""The synthetic marketplace is deterministic by seed and has the traits of real order history."""

from __future__ import annotations

from purchase_matcher.synthetic import Marketplace
from recall_shared import events as ev
from recall_shared.identifiers import normalise_gtin


def test_same_seed_same_data_other_seed_other_data() -> None:
    a = list(Marketplace(seed=3, products=30, customers=200).orders(300))
    b = list(Marketplace(seed=3, products=30, customers=200).orders(300))
    c = list(Marketplace(seed=4, products=30, customers=200).orders(300))
    assert a == b and a != c


def test_history_has_what_real_history_has() -> None:
    market = Marketplace(seed=11, products=60, customers=300)
    events = list(market.orders(3000))
    placed = [e for e in events if isinstance(e, ev.OrderPlaced)]
    lines = [line for o in placed for line in o.lines]
    assert len(placed) == 3000
    assert any(isinstance(e, ev.OrderCancelled) for e in events)
    assert any(isinstance(e, ev.OrderLineReturned) for e in events)
    assert any(line.quantity > 1 for line in lines), "multi-unit lines"
    assert any(line.lot for line in lines) and any(line.lot is None for line in lines), (
        "lot known for some lines only"
    )
    assert any(o.business_account_admin_id for o in placed) and any(o.is_gift for o in placed)
    assert all(normalise_gtin(line.gtin).status == "valid" for line in lines if line.gtin), (
        "GTINs carry check digits"
    )
    assert len({line.model_number for line in lines}) > len(
        {p.model_number for p in market.products}
    ), "spellings vary"
    customers = [o.customer_id for o in placed]
    assert len(set(customers)) < len(customers), "repeat customers"
    assert [o.placed_at for o in placed] == sorted(o.placed_at for o in placed)


def test_catalog_has_variants_and_several_sellers() -> None:
    listings = list(Marketplace(seed=5, products=40, customers=10).listings())
    parents = {listing.parent_product_id for listing in listings}
    assert len(parents) < len(listings), "variants share a parent"
    assert any(len(listing.seller_ids) > 1 for listing in listings) and any(
        len(listing.gtins) > 1 for listing in listings
    )
