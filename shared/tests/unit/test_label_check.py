"""The "am I affected?" check against each kind of rule: identifiers, seller, lots and serials
(values, ranges, prefixes, spacing), and each date window; OR across rules."""

from __future__ import annotations

from datetime import date

import pytest

from recall_shared import events as ev
from recall_shared.label_check import Label, LabelAnswer, check, check_rule

GTIN = "00012345678905"


def rule(**kw: object) -> ev.ScopeRule:
    return ev.ScopeRule.model_validate({"gtins": [GTIN], **kw})


@pytest.mark.parametrize(
    ("kw", "label", "answer"),
    [
        ({}, Label(gtin="0-12345-67890-5"), "confirmed"),  # a UPC-A as printed
        ({}, Label(gtin="4006381333931"), "not_affected"),
        ({}, Label(), "cannot_tell"),
        ({"model_numbers": ["KX-1"]}, Label(model_number="kx 1"), "confirmed"),
        ({"seller_ids": ["s1"]}, Label(gtin=GTIN, seller_id="s2"), "not_affected"),
        ({"seller_ids": ["s1"]}, Label(gtin=GTIN), "cannot_tell"),
        ({"lots": {"values": ["BJ3186"]}}, Label(gtin=GTIN, lot="bj-3186"), "confirmed"),
        ({"lots": {"values": ["BJ3186"]}}, Label(gtin=GTIN, lot="BJ3187"), "not_affected"),
        (
            {"lots": {"ranges": [{"first": "00112", "last": "10412"}], "collation": "numeric"}},
            Label(gtin=GTIN, lot="4411"),
            "confirmed",
        ),
        (
            {"lots": {"ranges": [{"first": "00112", "last": "10412"}], "collation": "numeric"}},
            Label(gtin=GTIN, lot="LOT A"),
            "cannot_tell",
        ),
        ({"serials": {"prefixes": ["12J"]}}, Label(gtin=GTIN, serial="12j 0044"), "confirmed"),
        (
            {"serials": {"ranges": [{"first": "AB 12 0500 01", "last": "AB 12 0600 99"}]}},
            Label(gtin=GTIN, serial="AB12050007"),
            "confirmed",
        ),
        ({"serials": {"prefixes": ["12J"]}}, Label(gtin=GTIN), "cannot_tell"),
        (
            {"manufactured": {"start": "2010-12-15", "end": "2011-11-15"}},
            Label(gtin=GTIN, manufactured_on=date(2011, 12, 1)),
            "not_affected",
        ),
        (
            {"best_before": {"end": "2026-03-31"}},
            Label(gtin=GTIN, best_before=date(2026, 3, 1)),
            "confirmed",
        ),
        (
            {"expiry": {"start": "2012-01-19", "end": "2012-05-02"}},
            Label(gtin=GTIN, expires_on=date(2012, 5, 3)),
            "not_affected",
        ),
        ({"purchased": {"start": "2024-08-01"}}, Label(gtin=GTIN), "cannot_tell"),
    ],
)
def test_each_rule_kind(kw: dict, label: Label, answer: str) -> None:
    assert check([rule(**kw)], label).answer == answer


def test_what_would_settle_it_is_named() -> None:
    r = rule(lots={"values": ["A1"]}, expiry={"end": "2026-01-01"})
    assert check_rule(r, Label(gtin=GTIN)) == LabelAnswer("cannot_tell", ("lot", "expiry date"))
    by_product_id = ev.ScopeRule(product_ids=["P1"])
    assert check([by_product_id], Label(gtin=GTIN)) == LabelAnswer("cannot_tell", ("product",))


def test_rules_combine_with_or() -> None:
    lot_rule = rule(lots={"values": ["A1"]})
    all_units = rule(seller_ids=["s2"])
    assert check([lot_rule, all_units], Label(gtin=GTIN, lot="B7", seller_id="s2")).answer == (
        "confirmed"
    )
    assert check([lot_rule, all_units], Label(gtin=GTIN, lot="B7", seller_id="s1")).answer == (
        "not_affected"
    )
    assert check([lot_rule, all_units], Label(gtin=GTIN, lot="B7")) == LabelAnswer(
        "cannot_tell", ("seller",)
    )
