"""A customer's label confirmation against the recall's rules, free of I/O: it settles what the
alert did not know (confirmed), and never takes a line out of scope nor lowers its tier."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from purchase_matcher.domain import (
    LabelFacts,
    Line,
    alert_id_for,
    build_alert,
    label_mismatch,
)
from recall_shared import events as ev
from recall_shared.sample_events import recall_snapshot

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def line(line_id: str = "l-1", **kw: Any) -> Line:
    return Line(
        line_id=line_id,
        order_id="o-1",
        customer_id="c-1",
        product_id="p-kettle",
        title="Kettle",
        gtin=None,
        model_number=None,
        seller_id="s-1",
        quantity=1,
        returned_quantity=0,
        cancelled=False,
        unit_price=Decimal("19.99"),
        currency="EUR",
        lot=None,
        serial=None,
        placed_at=T0,
    )._replace(**kw)


def recall(*rules: ev.ScopeRule) -> ev.RecallSnapshot:
    return recall_snapshot(*rules, seller_id="s-1", published_at=T0)


LOTS = recall(
    ev.ScopeRule(
        product_ids=["p-kettle"],
        lots=ev.CodeRule(ranges=[ev.CodeRange(first="L 100", last="L 199")]),
    )
)


def tiers(draft: object) -> tuple[str, list[tuple[str, list[str]]]]:
    assert draft is not None
    state = draft.state  # type: ignore[attr-defined]
    return state.tier, [(x.tier, x.unknown_attributes) for x in state.lines]


def test_without_a_label_an_unknown_lot_is_possibly_affected() -> None:
    assert tiers(build_alert(LOTS, "c-1", [line()])) == (
        "possibly_affected",
        [("possibly_affected", ["lot"])],
    )


def test_a_label_inside_the_range_confirms_the_alert() -> None:
    draft = build_alert(LOTS, "c-1", [line()], LabelFacts(lot="l150"))
    assert tiers(draft) == ("confirmed", [("confirmed", [])])


def test_the_confirmed_alert_has_another_fingerprint_so_it_is_announced_as_changed() -> None:
    plain, labelled = (
        build_alert(LOTS, "c-1", [line()]),
        build_alert(LOTS, "c-1", [line()], LabelFacts(lot="L150")),
    )
    assert plain is not None and labelled is not None
    assert plain.fingerprint != labelled.fingerprint


def test_a_label_outside_the_range_neither_confirms_nor_removes_the_line() -> None:
    draft = build_alert(LOTS, "c-1", [line()], LabelFacts(lot="L 250"))
    assert tiers(draft) == ("possibly_affected", [("possibly_affected", ["lot"])])


def test_a_label_never_lowers_a_line_the_order_history_confirms() -> None:
    draft = build_alert(LOTS, "c-1", [line(lot="L120")], LabelFacts(lot="L 999"))
    assert tiers(draft) == ("confirmed", [("confirmed", [])])


def test_a_label_that_settles_one_constraint_of_two_leaves_the_other_unknown() -> None:
    both = recall(
        ev.ScopeRule(
            product_ids=["p-kettle"],
            lots=ev.CodeRule(values=["L1"]),
            manufactured=ev.DateWindow(start=date(2025, 1, 1), end=date(2025, 6, 30)),
        )
    )
    assert tiers(build_alert(both, "c-1", [line()], LabelFacts(lot="L1")))[0] == "possibly_affected"
    dated = LabelFacts(lot="L1", manufactured_on=date(2025, 2, 1))
    assert tiers(build_alert(both, "c-1", [line()], dated))[0] == "confirmed"


def test_a_label_reaches_no_line_the_recall_does_not_name() -> None:
    assert build_alert(LOTS, "c-1", [line(product_id="p-lamp")], LabelFacts(lot="L150")) is None


def test_a_confirmation_must_name_the_alert_of_its_recall_and_customer() -> None:
    assert label_mismatch(alert_id_for("rc-1", "c-1"), "rc-1", "c-1") is None
    assert "not the alert" in (label_mismatch(alert_id_for("rc-1", "c-2"), "rc-1", "c-1") or "")
