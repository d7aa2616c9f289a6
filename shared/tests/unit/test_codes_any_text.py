"""A lot, serial or GTIN in any text, as customers type and order histories record them, is
compared or left open, never an error: Python's ``str.isdigit`` takes "³" and other non-decimal
digits that ``int()`` refuses, so the comparisons ask ``isdecimal`` (and GTINs ASCII digits)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recall_shared import events as ev
from recall_shared.identifiers import normalise_gtin
from recall_shared.label_check import Label, check
from recall_shared.scope import (
    Collation,
    collation_key,
    prefix_verdict,
    range_verdict,
    value_verdict,
)

COLLATIONS: tuple[Collation, ...] = ("numeric", "natural", "exact")
# Digits of every kind beside letters and separators, so the awkward ones come up often.
CODES = st.text(alphabet=st.sampled_from("0123456789³²¹⁴½٣٤۵߄AbZ -./_\u00a0") | st.characters())


@given(code=CODES, first=st.sampled_from(["100", "L 100", "AB 12 0500 01"]))
def test_any_code_gets_a_verdict_in_every_collation(code: str, first: str) -> None:
    for collation in COLLATIONS:
        collation_key(code, collation)
        assert range_verdict(code, first, first, collation) in ("in", "out", "unknown")
        assert value_verdict(code, first, collation) in ("in", "out", "unknown")
    assert prefix_verdict(code, first) in ("in", "out", "unknown")


@pytest.mark.parametrize("lot", ["1³5", "³", "²³⁴"])
def test_superscript_digits_under_numeric_leave_the_line_open(lot: str) -> None:
    rule = ev.ScopeRule(
        product_ids=["p"],
        lots=ev.CodeRule(collation="numeric", ranges=[ev.CodeRange(first="100", last="199")]),
    )
    assert rule.lots is not None and rule.lots.verdict(lot) == "unknown"
    assert check([rule], Label(product_id="p", lot=lot)).answer == "cannot_tell"


@given(raw=CODES)
def test_any_text_is_a_gtin_or_refused_never_an_error(raw: str) -> None:
    result = normalise_gtin(raw)
    assert result.gtin14 is None or (result.gtin14.isascii() and result.gtin14.isdecimal())


@pytest.mark.parametrize("raw", ["0001234567890³", "٠٠٠١٢٣٤٥٦٧٨٩٠٥"])
def test_a_gtin_of_other_digits_is_refused(raw: str) -> None:
    assert normalise_gtin(raw).status == "invalid"
