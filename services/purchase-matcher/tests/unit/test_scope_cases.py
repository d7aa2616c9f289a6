"""The hard scope cases of product.md, rule by rule against order lines (pure, no I/O)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from purchase_matcher.domain import Line, Reach, build_alert, line_reach, rule_reach
from recall_shared import events as ev
from recall_shared.sample_events import recall_snapshot


def line(**kw: Any) -> Line:
    return Line(
        line_id="l1",
        order_id="o1",
        customer_id="c1",
        product_id="P1",
        title="Kettle",
        gtin=None,
        model_number=None,
        seller_id="s1",
        quantity=1,
        returned_quantity=0,
        cancelled=False,
        unit_price=Decimal("10.00"),
        currency="EUR",
        lot=None,
        serial=None,
        placed_at=datetime(2024, 9, 1, tzinfo=UTC),
    )._replace(**kw)


def codes(first: str, last: str, collation: str = "natural") -> ev.CodeRule:
    return ev.CodeRule(ranges=[ev.CodeRange(first=first, last=last)], collation=collation)


def test_lot_range_and_expiry_window_both_must_hold() -> None:
    # "lots 00112 through 10412 AND expiry 01/19/2012-05/02/2012"
    rule = ev.ScopeRule(
        product_ids=["P1"],
        lots=codes("00112", "10412", "numeric"),
        expiry=ev.DateWindow(start=date(2012, 1, 19), end=date(2012, 5, 2)),
    )
    assert rule_reach(rule, line(lot="00500", expires_on=date(2012, 3, 1))) == Reach("confirmed")
    assert (
        rule_reach(rule, line(lot="00500", expires_on=date(2012, 6, 1))) is None
    )  # expiry known, outside
    assert (
        rule_reach(rule, line(lot="20000", expires_on=date(2012, 3, 1))) is None
    )  # lot known, outside
    assert rule_reach(rule, line(lot="00500")) == Reach("possibly_affected", ("expiry date",))
    assert rule_reach(rule, line()) == Reach("possibly_affected", ("lot", "expiry date"))


def test_serial_range_of_uneven_width_and_prefixes() -> None:
    by_range = ev.ScopeRule(
        product_ids=["P1"], serials=codes("FFP 49 1203 0001", "FFP 49 1237 00974")
    )
    assert rule_reach(by_range, line(serial="FFP 49 1230 00500")).tier == "confirmed"  # type: ignore[union-attr]
    assert rule_reach(by_range, line(serial="FFP 49 1237 00975")) is None
    by_prefix = ev.ScopeRule(product_ids=["P1"], serials=ev.CodeRule(prefixes=["12J", "12K"]))
    assert rule_reach(by_prefix, line(serial="12K55012")).tier == "confirmed"  # type: ignore[union-attr]
    assert rule_reach(by_prefix, line(serial="13A00001")) is None


def test_all_lots_made_between_two_dates() -> None:
    rule = ev.ScopeRule(
        product_ids=["P1"],
        manufactured=ev.DateWindow(start=date(2010, 12, 15), end=date(2011, 11, 15)),
    )
    assert rule_reach(rule, line(manufactured_on=date(2011, 6, 1))) == Reach("confirmed")
    assert rule_reach(rule, line(manufactured_on=date(2011, 12, 1))) is None
    assert rule_reach(rule, line(lot="A1")) == Reach("possibly_affected", ("manufacture date",))


def test_sale_window_against_purchase_date() -> None:
    # "sold at X from Aug 2024 through Apr 2026"
    rule = ev.ScopeRule(
        product_ids=["P1"], purchased=ev.DateWindow(start=date(2024, 8, 1), end=date(2026, 4, 30))
    )
    assert rule_reach(rule, line(placed_at=datetime(2024, 8, 1, 9, tzinfo=UTC))) == Reach(
        "confirmed"
    )
    assert rule_reach(rule, line(placed_at=datetime(2024, 7, 31, 23, tzinfo=UTC))) is None
    assert rule_reach(rule, line(placed_at=datetime(2026, 5, 1, tzinfo=UTC))) is None


def test_variants_recalled_one_by_one() -> None:
    rule = ev.ScopeRule(product_ids=["P1-red"])
    assert rule_reach(rule, line(product_id="P1-red")) == Reach("confirmed")
    assert rule_reach(rule, line(product_id="P1-blue")) is None


def test_identifiers_are_alternatives() -> None:
    rule = ev.ScopeRule(gtins=["00011110911285"], model_numbers=["K1-1700"])
    assert rule_reach(rule, line(product_id="X", gtin="00011110911285")) == Reach("confirmed")
    assert rule_reach(rule, line(product_id="Y", model_number="k1 1700")) == Reach("confirmed")
    assert rule_reach(rule, line(product_id="Z", gtin="00011110911292")) is None


def test_rules_combine_with_or_and_a_confirming_rule_wins() -> None:
    lot_rule = ev.ScopeRule(product_ids=["P1"], lots=ev.CodeRule(values=["A1"]))
    all_units_sold_by_s2 = ev.ScopeRule(product_ids=["P1"], seller_ids=["s2"])
    unknown_lot_from_s2 = line(seller_id="s2")
    assert line_reach([lot_rule, all_units_sold_by_s2], unknown_lot_from_s2) == Reach("confirmed")
    assert line_reach([lot_rule, all_units_sold_by_s2], line(seller_id="s1")) == Reach(
        "possibly_affected", ("lot",)
    )
    assert line_reach([lot_rule, all_units_sold_by_s2], line(seller_id="s1", lot="B7")) is None


def _recall(*rules: ev.ScopeRule) -> ev.RecallSnapshot:
    return recall_snapshot(*rules, recall_id="r1", published_at=datetime(2024, 10, 1, tzinfo=UTC))


def test_lot_unknown_makes_the_alert_possibly_affected_and_says_what_to_check() -> None:
    alert = build_alert(
        _recall(ev.ScopeRule(product_ids=["P1"], lots=ev.CodeRule(values=["A1"]))), "c1", [line()]
    )
    assert alert is not None and alert.state.tier == "possibly_affected"
    assert alert.state.lines[0].unknown_attributes == ["lot"]


def test_one_confirmed_line_makes_the_alert_confirmed() -> None:
    recall = _recall(ev.ScopeRule(product_ids=["P1"], lots=ev.CodeRule(values=["A1"])))
    alert = build_alert(
        recall,
        "c1",
        [line(line_id="l1"), line(line_id="l2", lot="A1"), line(line_id="l3", lot="B2")],
    )
    assert alert is not None and alert.state.tier == "confirmed"
    assert [(alert_line.line_id, alert_line.tier) for alert_line in alert.state.lines] == [
        ("l1", "possibly_affected"),
        ("l2", "confirmed"),
    ]


def test_a_known_lot_outside_the_scope_is_not_told() -> None:
    recall = _recall(ev.ScopeRule(product_ids=["P1"], lots=ev.CodeRule(values=["A1"])))
    assert build_alert(recall, "c1", [line(lot="B2")]) is None


def test_learning_the_lot_changes_the_fingerprint() -> None:
    recall = _recall(ev.ScopeRule(product_ids=["P1"], lots=ev.CodeRule(values=["A1"])))
    before = build_alert(recall, "c1", [line()])
    after = build_alert(recall, "c1", [line(lot="A1")])
    assert (
        before
        and after
        and before.fingerprint != after.fingerprint
        and after.state.tier == "confirmed"
    )


def test_a_serial_recorded_without_its_spaces_is_inside_its_range() -> None:
    rule = ev.ScopeRule(product_ids=["P1"], serials=codes("AB 12 0500 01", "AB 12 0600 99"))
    assert rule_reach(rule, line(serial="AB12050007")) == Reach("confirmed")
    assert rule_reach(rule, line(serial="ab-12-0601-00")) is None


def test_a_lot_that_cannot_be_compared_makes_the_line_possibly_affected() -> None:
    rule = ev.ScopeRule(product_ids=["P1"], lots=codes("00112", "10412", "numeric"))
    assert rule_reach(rule, line(lot="LOT-A")) == Reach("possibly_affected", ("lot",))
    assert rule_reach(rule, line(lot="LOT-A", product_id="P2")) is None  # not the product
