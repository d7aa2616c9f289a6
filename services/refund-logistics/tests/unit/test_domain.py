"""The remedy case state machine and the refund amount, free of I/O."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import get_args

import pytest

from recall_shared import events as ev
from refund_logistics.domain import (
    TRANSITIONS,
    IllegalCaseTransition,
    LineRefund,
    apply,
    refunds_due,
)

ALLOWED = [
    (None, "open", "requested"),
    ("requested", "refer_to_seller", "referred_to_seller"),
    ("requested", "issue_label", "label_issued"),
    ("label_issued", "receive_item", "item_received"),
    ("item_received", "issue_refund", "refunded"),
    ("requested", "issue_refund", "refunded"),
    ("requested", "ship_replacement", "replacement_shipped"),
    ("requested", "repair", "repaired"),
    ("refunded", "close", "closed"),
    ("replacement_shipped", "close", "closed"),
    ("repaired", "close", "closed"),
    ("requested", "reject", "rejected"),
    ("label_issued", "reject", "rejected"),
]


@pytest.mark.parametrize(
    ("state", "transition", "to"), ALLOWED, ids=[f"{s}-{t}" for s, t, _ in ALLOWED]
)
def test_every_allowed_transition(state: str | None, transition: str, to: str) -> None:
    assert apply(state, transition) == to


def test_the_table_is_exactly_the_documented_one() -> None:
    assert {(s, t): to for s, t, to in ALLOWED} == TRANSITIONS


def test_every_target_state_is_a_state_of_the_event_contract() -> None:
    states = set(get_args(ev.CaseState))
    assert set(TRANSITIONS.values()) <= states
    assert {s for s, _ in TRANSITIONS if s is not None} <= states


@pytest.mark.parametrize(
    ("state", "transition"),
    [
        (None, "issue_refund"),  # a case must be opened first
        ("requested", "open"),  # opened twice
        ("refunded", "issue_refund"),  # paid twice
        ("closed", "issue_refund"),
        ("label_issued", "issue_refund"),  # refund with return waits for the item
        ("rejected", "issue_label"),
        ("referred_to_seller", "issue_refund"),
        ("closed", "close"),
        ("item_received", "close"),
        ("requested", "no_such_transition"),
    ],
)
def test_illegal_transitions_raise(state: str | None, transition: str) -> None:
    with pytest.raises(IllegalCaseTransition) as err:
        apply(state, transition)
    assert transition in str(err.value)


def _line(line_id: str, units: int, price: str, currency: str = "EUR") -> ev.AffectedLine:
    return ev.AffectedLine(
        order_id="o",
        line_id=line_id,
        product_id="p",
        seller_id="s",
        purchased_at=datetime(2025, 1, 1, tzinfo=UTC),
        units=units,
        unit_price=Decimal(price),
        currency=currency,
    )


def test_refund_is_units_times_price_per_line() -> None:
    due = refunds_due([_line("a", 3, "19.99"), _line("b", 1, "5.00", "USD")], {})
    assert due == [
        LineRefund("a", Decimal("59.97"), "EUR"),
        LineRefund("b", Decimal("5.00"), "USD"),
    ]


def test_already_refunded_amounts_are_deducted() -> None:
    due = refunds_due([_line("a", 2, "10.00"), _line("b", 1, "7.50")], {"a": Decimal("5.00")})
    assert due == [
        LineRefund("a", Decimal("15.00"), "EUR"),
        LineRefund("b", Decimal("7.50"), "EUR"),
    ]


def test_fully_or_over_refunded_lines_owe_nothing_never_negative() -> None:
    due = refunds_due(
        [_line("a", 2, "10.00"), _line("b", 1, "7.50")],
        {"a": Decimal("20.00"), "b": Decimal("9.99")},
    )
    assert due == []
    assert refunds_due([_line("c", 1, "0.00")], {}) == []


def test_refund_amount_is_rounded_to_cents() -> None:
    (due,) = refunds_due([_line("a", 3, "0.33")], {})
    assert due.amount == Decimal("0.99")
    assert due.amount.as_tuple().exponent == -2


def test_a_period_is_a_calendar_month_in_utc() -> None:
    from refund_logistics.domain import Period

    p = Period.parse("2026-12")
    assert (p.start, p.end) == (datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
    assert str(p) == "2026-12" and Period.containing(
        datetime(2026, 11, 30, 23, 59, tzinfo=UTC)
    ) == Period(2026, 11)
    for bad in ("2026-13", "2026-1", "26-11", "2026/11", "", "2026-00", "2026-11-01", "+202-01"):
        with pytest.raises(ValueError, match="must be YYYY-MM"):
            Period.parse(bad)
    with pytest.raises(ValueError, match="must be YYYY-MM"):
        Period.parse("\u0662\u0660\u0662\u0666-11")  # digits, but not ASCII ones
    assert Period.parse("9998-12").end == datetime(9999, 1, 1, tzinfo=UTC)


def test_a_period_out_of_range_is_refused_before_its_bounds_are_computed() -> None:
    from refund_logistics.domain import Period

    for bad in ("9999-12", "9999-01", "1999-12", "0000-01"):
        with pytest.raises(ValueError, match="out of range: the year must be from 2000 to 9998"):
            Period.parse(bad)


def test_correction_rate_is_a_percentage_to_one_decimal() -> None:
    from refund_logistics.domain import correction_rate

    assert correction_rate(2, 3) == Decimal("66.7")
    assert correction_rate(0, 0) == Decimal("0.0") and correction_rate(5, 5) == Decimal("100.0")
