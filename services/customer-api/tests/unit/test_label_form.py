"""What the "am I affected?" forms read: the label's dates checked, the typed values kept as typed,
and only the dates a recall's scope limits asked for."""

from __future__ import annotations

from datetime import date

import pytest

from customer_api import i18n
from customer_api.label_form import date_inputs, dates_asked, parse_day, read
from recall_shared import events as ev

WINDOW = ev.DateWindow(start=date(2027, 3, 1))


@pytest.mark.parametrize("bad", ["15.03.2027", "2027-02-30", "20270315", "2027-W11-1", "x", " "])
def test_only_a_real_year_month_day_is_a_date(bad: str) -> None:
    assert parse_day("2027-03-15") == date(2027, 3, 15)
    with pytest.raises(ValueError):
        parse_day(bad)


def test_the_form_keeps_what_was_typed_and_names_the_bad_dates() -> None:
    form = read({"lot": "  L 7 ", "best_before": "2027-03-15", "expires_on": "31/03/2027"})
    assert form.text("lot") == "L 7" and form.text("serial") is None
    assert form.day("best_before") == date(2027, 3, 15) and form.day("expires_on") is None
    assert form.bad_dates == ("expires_on",)
    assert form.typed["expires_on"] == "31/03/2027"
    assert read({"lot": "x" * 500}).typed["lot"] == "x" * 200
    assert not read({}).anything and read({"serial": "S1"}).anything


def test_the_scope_asks_for_the_dates_its_rules_limit() -> None:
    rules = [
        ev.ScopeRule(product_ids=["p"], best_before=WINDOW),
        ev.ScopeRule(product_ids=["q"], expiry=WINDOW, purchased=WINDOW),
    ]
    assert dates_asked(rules) == ("best_before", "expires_on")
    assert dates_asked([ev.ScopeRule(product_ids=["p"], manufactured=WINDOW)]) == (
        "manufactured_on",
    )
    assert dates_asked([ev.ScopeRule(product_ids=["p"])]) == ()


def test_inputs_are_the_asked_dates_and_any_typed_one_with_its_error() -> None:
    s = i18n.strings("de")
    assert [d["name"] for d in date_inputs(("best_before",), None, s)] == ["best_before"]
    form = read({"manufactured_on": "gestern"})
    inputs = date_inputs(("best_before",), form, s)
    assert [(d["name"], d["value"]) for d in inputs] == [
        ("manufactured_on", "gestern"),
        ("best_before", ""),
    ]
    assert inputs[0]["label"] == "Herstellungsdatum" and inputs[0]["error"].startswith("Das ist")
    assert inputs[1]["error"] == ""
