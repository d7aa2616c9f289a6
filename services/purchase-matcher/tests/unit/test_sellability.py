"""The checkout guard's verdict, free of I/O: blocked, needs_check or allowed, by the matching
rules."""

from __future__ import annotations

from dataclasses import fields, replace
from datetime import UTC, date, datetime
from typing import Any

from purchase_matcher.guard import CheckLine
from purchase_matcher.sellability import SaleLine, judge, sale_identifiers
from recall_shared import events as ev
from recall_shared.sample_events import recall_snapshot

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
GTIN = "00012345678905"


def recall(recall_id: str, *rules: ev.ScopeRule, title: str = "Kettle recall") -> ev.RecallSnapshot:
    return recall_snapshot(*rules, recall_id=recall_id, version=2, title=title, published_at=NOW)


def sale(**kw: Any) -> SaleLine:
    return replace(SaleLine(product_id="p-kettle", seller_id="s-1"), **kw)


def test_a_confirming_recall_blocks_the_line_and_says_which() -> None:
    judged = judge(sale(), [recall("rc-1", ev.ScopeRule(product_ids=["p-kettle"]))], NOW)
    assert judged.verdict == "blocked"
    [hit] = judged.recalls
    assert (hit.recall_id, hit.recall_version, hit.tier) == ("rc-1", 2, "confirmed")
    assert hit.reason == "in the scope of recall 'Kettle recall'"


def test_an_unknown_lot_asks_for_a_check_and_a_known_one_decides() -> None:
    lots = ev.ScopeRule(gtins=[GTIN], lots=ev.CodeRule(values=["L-7"]))
    recalls = [recall("rc-1", lots)]
    unknown = judge(sale(gtin=GTIN), recalls, NOW)
    assert unknown.verdict == "needs_check"
    assert unknown.recalls[0].unknown_attributes == ("lot",)
    assert "check the unit's lot" in unknown.recalls[0].reason
    assert judge(sale(gtin=GTIN, lot="L 7"), recalls, NOW).verdict == "blocked"
    assert judge(sale(gtin=GTIN, lot="L-8"), recalls, NOW).verdict == "allowed"


def test_a_clean_line_is_allowed() -> None:
    judged = judge(
        sale(product_id="p-lamp"), [recall("rc-1", ev.ScopeRule(product_ids=["p-x"]))], NOW
    )
    assert (judged.verdict, judged.recalls) == ("allowed", ())


def test_a_seller_scoped_recall_reaches_only_that_sellers_units() -> None:
    scoped = [recall("rc-1", ev.ScopeRule(product_ids=["p-kettle"], seller_ids=["s-1"]))]
    assert judge(sale(seller_id="s-1"), scoped, NOW).verdict == "blocked"
    assert judge(sale(seller_id="s-2"), scoped, NOW).verdict == "allowed"


def test_the_sale_is_dated_now_for_a_purchase_window() -> None:
    window = ev.ScopeRule(product_ids=["p-kettle"], purchased=ev.DateWindow(end=date(2026, 1, 31)))
    assert judge(sale(), [recall("rc-1", window)], NOW).verdict == "allowed"
    assert judge(sale(), [recall("rc-1", window)], datetime(2026, 1, 2, tzinfo=UTC)).verdict == (
        "blocked"
    )


def test_a_confirming_recall_outweighs_a_possible_one_and_both_are_named() -> None:
    by_model = ev.ScopeRule(model_numbers=["KX 1"], serials=ev.CodeRule(prefixes=["12J"]))
    judged = judge(
        sale(model_number="kx-1"),
        [recall("rc-b", by_model), recall("rc-a", ev.ScopeRule(product_ids=["p-kettle"]))],
        NOW,
    )
    assert judged.verdict == "blocked"
    assert [(h.recall_id, h.tier) for h in judged.recalls] == [
        ("rc-a", "confirmed"),
        ("rc-b", "possibly_affected"),
    ]


def test_the_identifiers_that_find_recalls_are_the_order_lines_ones() -> None:
    ids = sale_identifiers([sale(gtin=GTIN, model_number="KX-1"), sale(product_id="p-2")])
    assert ids == {"product": ["p-2", "p-kettle"], "gtin": [GTIN], "model": ["KX1"]}


def test_a_checked_line_carries_every_attribute_into_the_sale_line() -> None:
    """CheckLine.sale_line copies field by field: one added to both and not copied fails here."""
    asked = CheckLine(
        ref="r",
        product_id="p",
        seller_id="s",
        gtin="12345670",
        model_number="M",
        lot="L",
        serial="S",
        manufactured_on=date(2026, 1, 1),
        best_before=date(2026, 1, 2),
        expires_on=date(2026, 1, 3),
    )
    line = asked.sale_line()
    assert {f.name for f in fields(SaleLine)} == set(CheckLine.model_fields) - {"ref"}
    assert all(getattr(line, f.name) == getattr(asked, f.name) for f in fields(SaleLine))
    assert all(getattr(line, f.name) is not None for f in fields(SaleLine))
