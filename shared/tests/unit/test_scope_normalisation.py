"""Codes compare after normalisation: spacing, hyphens, case, and leading zeros under ``numeric``.

Property tests (hypothesis) state the range and prefix rules against a reference that works on
the segments' numbers directly; the examples are the spelling variants seen in real records.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recall_shared import events as ev
from recall_shared.scope import range_verdict, value_verdict

SEPARATORS = st.sampled_from(["", " ", "-", " - ", ".", "/", "_", "  "])


def spell(segments: list[str], data: st.DataObject) -> str:
    """The segments joined by any mix of separators, in any case, with stray outer spaces."""
    out = segments[0]
    for segment in segments[1:]:
        out += data.draw(SEPARATORS) + segment
    if data.draw(st.booleans()):
        out = out.lower()
    return data.draw(st.sampled_from(["", " "])) + out + data.draw(st.sampled_from(["", "\t"]))


LETTERS = st.text(alphabet="ABCDEFGHJKLMNPRSTUVWXYZ", min_size=1, max_size=3)
WIDTHS = st.lists(st.integers(min_value=1, max_value=4), min_size=1, max_size=4)


def padded(numbers: tuple[int, ...], widths: list[int]) -> list[str]:
    return [str(n).zfill(w) for n, w in zip(numbers, widths, strict=True)]


@st.composite
def serial_case(
    draw: st.DrawFn,
) -> tuple[str, list[int], tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    letters, widths = draw(LETTERS), draw(WIDTHS)
    numbers = st.tuples(*(st.integers(min_value=0, max_value=10**w - 1) for w in widths))
    low, high = sorted((draw(numbers), draw(numbers)))
    return letters, widths, low, high, draw(numbers)


@given(serial_case(), st.data())
def test_natural_serial_is_in_its_range_however_it_is_spaced(
    case: tuple[str, list[int], tuple[int, ...], tuple[int, ...], tuple[int, ...]],
    data: st.DataObject,
) -> None:
    """Bounds written with spaces, the serial with any separators (or none) and in any case: in
    the range exactly when its segments, read as numbers, are."""
    letters, widths, low, high, serial = case
    first = " ".join([letters, *padded(low, widths)])
    last = " ".join([letters, *padded(high, widths)])
    code = spell([letters, *padded(serial, widths)], data)
    expected = "in" if low <= serial <= high else "out"
    assert range_verdict(code, first, last, "natural") == expected


@given(serial_case(), st.data())
def test_bounds_written_without_spaces_take_a_spaced_serial(
    case: tuple[str, list[int], tuple[int, ...], tuple[int, ...], tuple[int, ...]],
    data: st.DataObject,
) -> None:
    letters, widths, low, high, serial = case
    first = letters + "".join(padded(low, widths))
    last = letters + "".join(padded(high, widths))
    code = spell([letters, *padded(serial, widths)], data)
    expected = "in" if low <= serial <= high else "out"
    assert range_verdict(code, first, last, "natural") == expected


@given(
    st.integers(min_value=0, max_value=10**9),
    st.integers(min_value=0, max_value=10**9),
    st.integers(min_value=0, max_value=10**9),
    st.integers(min_value=0, max_value=4),
    st.data(),
)
def test_numeric_lots_ignore_leading_zeros_and_separators(
    a: int, b: int, lot: int, zeros: int, data: st.DataObject
) -> None:
    low, high = sorted((a, b))
    text = "0" * zeros + str(lot)
    cut = data.draw(st.integers(min_value=0, max_value=len(text)))
    code = spell([part for part in (text[:cut], text[cut:]) if part], data)
    rule = ev.CodeRule(
        ranges=[ev.CodeRange(first=str(low).zfill(10), last=str(high))], collation="numeric"
    )
    assert rule.verdict(code) == ("in" if low <= lot <= high else "out")
    assert value_verdict(code, str(lot).zfill(12), "numeric") == "in"


PREFIX = st.text(alphabet="0123456789ABCDEFGHJK", min_size=1, max_size=5)


@given(PREFIX, st.text(alphabet="0123456789ABCDEFGHJK", max_size=8), st.data())
def test_prefix_rule_holds_whatever_the_spelling(
    prefix: str, rest: str, data: st.DataObject
) -> None:
    rule = ev.CodeRule(prefixes=[spell(list(prefix), data)])
    code = spell(list(prefix + rest), data)
    assert rule.verdict(code) == "in"


@given(PREFIX, PREFIX, st.data())
def test_prefix_rule_refuses_codes_that_begin_otherwise(
    prefix: str, code: str, data: st.DataObject
) -> None:
    rule = ev.CodeRule(prefixes=[prefix])
    expected = "in" if code.startswith(prefix) else "out"
    assert rule.verdict(spell(list(code), data)) == expected


@pytest.mark.parametrize(
    "serial",
    ["AB12050007", "ab12050007", "AB-12-0500-07", "AB 12 0500 07", "AB 1205 0007", "AB120500 07"],
)
def test_the_spacing_variants_of_a_serial_are_inside_their_range(serial: str) -> None:
    rule = ev.CodeRule(ranges=[ev.CodeRange(first="AB 12 0500 01", last="AB 12 0600 99")])
    assert rule.verdict(serial) == "in"


def test_serials_of_uneven_width_compacted() -> None:
    rule = ev.CodeRule(ranges=[ev.CodeRange(first="FFP 49 1203 0001", last="FFP 49 1237 00974")])
    assert rule.verdict("FFP4912370050") == "in" and rule.verdict("FFP49123700974") == "in"
    assert rule.verdict("FFP49123700975") == "out" and rule.verdict("FFP4912400001") == "out"
    assert rule.verdict("FFQ4912100001") == "out"


@pytest.mark.parametrize(
    ("rule", "code"),
    [
        (
            ev.CodeRule(ranges=[ev.CodeRange(first="00112", last="10412")], collation="numeric"),
            "L-5",
        ),
        (ev.CodeRule(values=["00112"], collation="numeric"), "LOT A"),
        (ev.CodeRule(ranges=[ev.CodeRange(first="AB 12 0500 01", last="AB 12 0600 99")]), "AB 12"),
        (ev.CodeRule(ranges=[ev.CodeRange(first="AB 12 0500 01", last="AB 12 0600 99")]), "1205"),
        (ev.CodeRule(values=["A1"]), " - "),
        (ev.CodeRule(prefixes=["12J"]), "/"),
    ],
)
def test_a_code_that_cannot_be_compared_is_unknown_not_out(rule: ev.CodeRule, code: str) -> None:
    assert rule.verdict(code) == "unknown"
    assert not rule.matches(code)


def test_known_to_be_outside_on_one_side_is_out_even_if_the_other_cannot_be_read() -> None:
    rule = ev.CodeRule(ranges=[ev.CodeRange(first="AB 12 0500 01", last="AB 12 0600 99")])
    assert rule.verdict("AB 13") == "out"  # 13 > 12 decides before the rest is needed
    assert rule.verdict("AB 11") == "out"


def test_a_readable_alternative_wins_over_an_unreadable_one() -> None:
    rule = ev.CodeRule(
        values=["X7"], ranges=[ev.CodeRange(first="1", last="9")], collation="numeric"
    )
    assert rule.verdict("x-7") == "in"
    assert rule.verdict("X8") == "unknown"
