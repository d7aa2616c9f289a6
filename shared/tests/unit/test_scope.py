"""Scope constraints on the cases quoted in product.md."""

from __future__ import annotations

from datetime import date

import pytest
from pydantic import ValidationError

from recall_shared import events as ev
from recall_shared.scope import collation_key, natural_key


def lots(*ranges: tuple[str, str], collation: str = "natural", **kw: object) -> ev.CodeRule:
    return ev.CodeRule(
        ranges=[ev.CodeRange(first=a, last=b) for a, b in ranges], collation=collation, **kw
    )


def test_zero_padded_numeric_lot_range() -> None:  # "lots 00112 through 10412"
    rule = lots(("00112", "10412"), collation="numeric")
    assert (
        rule.matches("00112")
        and rule.matches("10412")
        and rule.matches("5000")
        and rule.matches("00999")
    )
    assert not rule.matches("00111") and not rule.matches("10413") and not rule.matches("LOT-A")


def test_serial_range_of_uneven_width() -> None:  # "FFP 49 1203 0001" to "FFP 49 1237 00974"
    rule = lots(("FFP 49 1203 0001", "FFP 49 1237 00974"))
    assert rule.matches("FFP 49 1203 0001") and rule.matches("FFP 49 1237 00974")
    assert rule.matches("FFP 49 1220 12") and rule.matches("ffp-49-1230-0999")
    assert not rule.matches("FFP 49 1237 00975") and not rule.matches("FFP 49 1202 9999")
    assert not rule.matches("FFQ 49 1210 0001")


def test_serial_prefixes() -> None:  # "beginning with 12J, 12K"
    rule = ev.CodeRule(prefixes=["12J", "12K"])
    assert rule.matches("12J004411") and rule.matches("12k-0001")
    assert not rule.matches("12L0001") and not rule.matches("X12J")


def test_explicit_values_ignore_case_spaces_and_hyphens() -> None:
    rule = ev.CodeRule(values=["AB 123-4"], collation="exact")
    assert rule.matches("ab1234") and not rule.matches("AB1235")


def test_alphanumeric_lot_range_in_natural_collation() -> None:
    rule = lots(("A9", "B10"))
    assert (
        rule.matches("A10")
        and rule.matches("B2")
        and not rule.matches("B11")
        and not rule.matches("A8")
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"ranges": [{"first": "10412", "last": "00112"}], "collation": "numeric"},
            "comes after last",
        ),
        (
            {"ranges": [{"first": "A1", "last": "00112"}], "collation": "numeric"},
            "cannot be read with collation",
        ),
        ({"ranges": [{"first": "1", "last": "2"}], "collation": "roman"}, "collation"),
        ({}, "at least one of values, ranges or prefixes"),
    ],
)
def test_invalid_code_rules_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ev.CodeRule.model_validate(kwargs)


def test_date_windows() -> None:
    window = ev.DateWindow(
        start=date(2010, 12, 15), end=date(2011, 11, 15)
    )  # "made between Dec 15 2010 and Nov 15 2011"
    assert window.contains(date(2010, 12, 15)) and window.contains(date(2011, 11, 15))
    assert not window.contains(date(2011, 11, 16))
    assert ev.DateWindow(start=date(2024, 8, 1)).contains(date(2030, 1, 1))
    with pytest.raises(ValidationError, match="is after end"):
        ev.DateWindow(start=date(2012, 5, 2), end=date(2012, 1, 19))
    with pytest.raises(ValidationError, match="give start, end or both"):
        ev.DateWindow()


def test_a_rule_needs_an_identifier() -> None:
    with pytest.raises(ValidationError, match="at least one identifier"):
        ev.ScopeRule(lots=ev.CodeRule(values=["1"]))
    assert ev.ScopeRule(parent_product_ids=["P"]).parent_product_ids == ["P"]


def test_collation_keys() -> None:
    assert natural_key("FFP 49 1203 0001") == ((1, "FFP"), (0, 49), (0, 1203), (0, 1))
    assert collation_key("00112", "numeric") == 112
    assert collation_key("LOT", "numeric") is None
    assert collation_key("ab-1", "exact") == "AB1"
