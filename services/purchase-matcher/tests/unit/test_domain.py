"""Matching, free of I/O: identifiers, seller restriction, units, grouping, deterministic ids, and
the difference between what was announced and what is true now."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
import pytest

from purchase_matcher.domain import (
    ALERT_NAMESPACE,
    AlertDraft,
    Announced,
    Line,
    LineUnits,
    Previous,
    alert_event_body,
    alert_id_for,
    build_alert,
    cancellation_refusal,
    catch_up,
    decide,
    line_tier,
    model_key,
    next_version,
    return_refusal,
    rule_tier,
    scope_fingerprint,
)
from recall_shared import events as ev

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
GTIN = "00012345678905"


def line(line_id: str = "l-1", **kw: Any) -> Line:
    return Line(
        line_id=line_id,
        order_id="o-1",
        customer_id="c-1",
        product_id="p-kettle",
        title="Kettle",
        gtin=GTIN,
        model_number="KX-1",
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


def content(title: str = "Kettle recall") -> ev.RecallContent:
    return ev.RecallContent(
        title=title,
        hazard="Burns.",
        severity="high",
        stop_using="Stop using it.",
        remedies=[ev.Remedy(type="refund_on_destruction")],
    )


def snapshot(
    *rules: ev.ScopeRule, version: int = 1, recall_id: str = "rc-1", title: str = "Kettle recall"
) -> ev.RecallSnapshot:
    return ev.RecallSnapshot(
        recall_id=recall_id,
        version=version,
        seller_id="s-1",
        content=content(title),
        rules=list(rules) or [ev.ScopeRule(product_ids=["p-kettle"])],
        published_at=T0 + timedelta(days=10),
    )


# --------------------------------------------------------------------------- identifiers


@pytest.mark.parametrize(
    ("a", "b"),
    [("AB-12 c", "ab12C"), ("ab/12.c", "AB12C"), ("ab_12-c", "Ab 12 C"), ("  kx-1 ", "KX1")],
)
def test_model_numbers_compare_without_case_and_separators(a: str, b: str) -> None:
    assert model_key(a) == model_key(b) is not None


def test_model_key_of_nothing_is_none_and_different_models_differ() -> None:
    assert model_key(None) is None and model_key("") is None and model_key(" - ./ ") is None
    assert model_key("AB-12") != model_key("AB-13")
    assert model_key("AB-12 c") == "AB12C"


def test_rule_reaches_a_line_by_product_id_gtin_or_model_number() -> None:
    bare = line(gtin=None, model_number=None)
    assert rule_tier(ev.ScopeRule(product_ids=["p-kettle"]), bare) == "confirmed"
    assert rule_tier(ev.ScopeRule(product_ids=["p-other"]), bare) is None

    by_gtin = line(product_id="p-unknown", model_number=None)
    assert rule_tier(ev.ScopeRule(gtins=[GTIN]), by_gtin) == "confirmed"
    assert rule_tier(ev.ScopeRule(gtins=["00099999999997"]), by_gtin) is None
    assert rule_tier(ev.ScopeRule(gtins=[GTIN]), line(gtin=None)) is None

    by_model = line(product_id="p-unknown", gtin=None, model_number="ab12C")
    assert rule_tier(ev.ScopeRule(model_numbers=["AB-12 c"]), by_model) == "confirmed"
    assert rule_tier(ev.ScopeRule(model_numbers=["AB-13"]), by_model) is None
    assert (
        rule_tier(ev.ScopeRule(model_numbers=["AB-12 c"]), line(gtin=None, model_number=None))
        is None
    )


def test_seller_ids_restrict_a_rule_to_units_sold_by_those_sellers() -> None:
    rule = ev.ScopeRule(product_ids=["p-kettle"], seller_ids=["s-1", "s-2"])
    assert rule_tier(rule, line(seller_id="s-1")) == "confirmed"
    assert rule_tier(rule, line(seller_id="s-2")) == "confirmed"
    assert rule_tier(rule, line(seller_id="s-3")) is None
    assert (
        rule_tier(ev.ScopeRule(product_ids=["p-kettle"]), line(seller_id="s-3")) == "confirmed"
    )  # empty: any seller


def test_rules_combine_with_or() -> None:
    rules = [ev.ScopeRule(product_ids=["p-other"]), ev.ScopeRule(model_numbers=["KX 1"])]
    assert line_tier(rules, line()) == "confirmed"
    assert line_tier(rules[:1], line()) is None
    assert line_tier([], line()) is None


# --------------------------------------------------------------------------- units


def test_units_exclude_cancelled_and_returned_units() -> None:
    assert line(quantity=3).units == 3
    assert line(quantity=3, returned_quantity=1).units == 2
    assert line(quantity=3, returned_quantity=3).units == 0
    assert line(quantity=3, returned_quantity=5).units == 0  # never negative
    assert line(quantity=3, cancelled=True).units == 0


def test_cancelled_and_fully_returned_lines_raise_no_alert() -> None:
    recall = snapshot()
    assert build_alert(recall, "c-1", [line(cancelled=True)]) is None
    assert build_alert(recall, "c-1", [line(quantity=2, returned_quantity=2)]) is None
    partial = build_alert(recall, "c-1", [line(quantity=4, returned_quantity=1)])
    assert partial is not None and [ln.units for ln in partial.state.lines] == [3]


# --------------------------------------------------------------------------- grouping


def test_repeat_purchases_are_one_alert_with_every_line_oldest_first() -> None:
    recall = snapshot(ev.ScopeRule(product_ids=["p-kettle"]), ev.ScopeRule(model_numbers=["KX-9"]))
    lines = [
        line("l-3", order_id="o-3", placed_at=T0 + timedelta(days=3), quantity=2),
        line("l-1", order_id="o-1", placed_at=T0),
        line(
            "l-x",
            order_id="o-1",
            product_id="p-toaster",
            gtin=None,
            model_number="TX",
            placed_at=T0,
        ),  # not recalled
        line(
            "l-2",
            order_id="o-2",
            product_id="p-kettle-v2",
            gtin=None,
            model_number="kx9",
            placed_at=T0 + timedelta(days=1),
        ),
        line("l-4", order_id="o-4", cancelled=True, placed_at=T0 + timedelta(days=4)),
    ]
    draft = build_alert(recall, "c-1", lines)
    assert draft is not None
    state = draft.state
    assert [(ln.line_id, ln.order_id, ln.units) for ln in state.lines] == [
        ("l-1", "o-1", 1),
        ("l-2", "o-2", 1),
        ("l-3", "o-3", 2),
    ]
    assert state.customer_id == "c-1" and state.recall_id == "rc-1" and state.recall_version == 1
    assert state.tier == "confirmed" and state.alert_version == 1 and state.seller_id == "s-1"
    assert state.recall == recall.content
    assert state.lines[0].purchased_at == T0 and state.lines[0].unit_price == Decimal("19.99")
    assert state.business_account_admin_id is None
    assert draft.fingerprint == scope_fingerprint(state)


def test_business_account_admin_is_carried() -> None:
    draft = build_alert(
        snapshot(), "c-1", [line("l-1"), line("l-2", business_account_admin_id="admin-9")]
    )
    assert draft is not None and draft.state.business_account_admin_id == "admin-9"


def test_no_affected_line_means_no_alert() -> None:
    assert build_alert(snapshot(ev.ScopeRule(product_ids=["p-other"])), "c-1", [line()]) is None
    assert build_alert(snapshot(), "c-1", []) is None


def test_alert_id_is_deterministic_per_recall_and_customer() -> None:
    a = alert_id_for("rc-1", "c-1")
    assert a == alert_id_for("rc-1", "c-1")
    assert uuid.UUID(a).version == 5
    assert len({a, alert_id_for("rc-1", "c-2"), alert_id_for("rc-2", "c-1")}) == 3
    # the separator keeps ("rc-1", "c-1x") and ("rc-1c", "-1x") style collisions apart
    assert alert_id_for("ab", "c") != alert_id_for("a", "bc")
    # exactly uuid5 of the pair, as published before (ids must never change for existing alerts)
    for rid, cid in (
        ("rc-1", "c-1"),
        ("", ""),
        ("r" * 64, "ü-客户"),
        (str(uuid.uuid4()), str(uuid.uuid4())),
    ):
        assert alert_id_for(rid, cid) == str(uuid.uuid5(ALERT_NAMESPACE, f"{rid}\x1f{cid}"))
    draft = build_alert(snapshot(), "c-1", [line()])
    assert draft is not None and draft.state.alert_id == a


def test_fingerprint_follows_lines_units_and_tier_not_wording() -> None:
    base = build_alert(snapshot(title="A"), "c-1", [line(quantity=2)])
    reworded = build_alert(snapshot(title="B", version=2), "c-1", [line(quantity=2)])
    fewer = build_alert(snapshot(), "c-1", [line(quantity=2, returned_quantity=1)])
    more = build_alert(snapshot(), "c-1", [line(quantity=2), line("l-2")])
    assert base and reworded and fewer and more
    assert base.fingerprint == reworded.fingerprint
    assert len({base.fingerprint, fewer.fingerprint, more.fingerprint}) == 3


# --------------------------------------------------------------------------- decide / next_version


def draft_for(*lines: Line, version: int = 1) -> AlertDraft:
    d = build_alert(snapshot(version=version), "c-1", lines)
    assert d is not None
    return d


def test_first_match_raises_version_one() -> None:
    d = draft_for(line())
    assert decide(None, d, 1) == "raise"
    assert next_version(None, d) == 1


def test_changed_lines_update_with_a_new_alert_version() -> None:
    old = draft_for(line())
    prev = Previous(alert_version=1, status="open", fingerprint=old.fingerprint, recall_version=1)
    new = draft_for(line(), line("l-2"), version=2)
    assert decide(prev, new, 2) == "update"
    assert next_version(prev, new) == 2
    # the same happens when only units change (a partial return), within the same recall version
    returned = draft_for(line()._replace(quantity=3, returned_quantity=1))
    prev3 = Previous(
        alert_version=4,
        status="open",
        fingerprint=draft_for(line(quantity=3)).fingerprint,
        recall_version=1,
    )
    assert decide(prev3, returned, 1) == "update" and next_version(prev3, returned) == 5


def test_only_the_recall_version_changed_updates_without_a_new_alert_version() -> None:
    old = draft_for(line())
    prev = Previous(alert_version=3, status="open", fingerprint=old.fingerprint, recall_version=1)
    same_scope = draft_for(line(), version=2)
    assert decide(prev, same_scope, 2) == "update"
    assert next_version(prev, same_scope) == 3


def test_nothing_changed_is_none() -> None:
    d = draft_for(line())
    prev = Previous(alert_version=2, status="open", fingerprint=d.fingerprint, recall_version=1)
    assert decide(prev, d, 1) == "none"


def test_no_longer_affected_withdraws_an_open_alert_only() -> None:
    d = draft_for(line())
    open_prev = Previous(
        alert_version=2, status="open", fingerprint=d.fingerprint, recall_version=1
    )
    assert decide(open_prev, None, 2) == "withdraw"
    assert decide(None, None, 2) == "none"
    for status in ("withdrawn", "closed"):
        assert decide(Previous(2, status, d.fingerprint, 1), None, 2) == "none"


def test_a_withdrawn_alert_that_matches_again_is_raised_with_a_new_version() -> None:
    d = draft_for(line(), version=3)
    prev = Previous(
        alert_version=2, status="withdrawn", fingerprint=d.fingerprint, recall_version=2
    )
    assert decide(prev, d, 3) == "raise"
    assert next_version(prev, d) == 3


# ---------------------------------------------------------- the event body, built without the model


@pytest.mark.parametrize(
    "lines",
    [
        [line()],
        [
            line(lot="A1", serial="SN-9", unit_price=Decimal("30")),
            line("l-2", unit_price=Decimal("0.50"), quantity=3, returned_quantity=1),
        ],
        [
            line(
                placed_at=T0 + timedelta(microseconds=123456),
                gtin=None,
                model_number=None,
                title="",
                business_account_admin_id="adm",
            )
        ],
        [
            line(
                placed_at=datetime(2024, 2, 29, 23, 59, 59, 1, tzinfo=UTC),
                unit_price=Decimal("1234567.89"),
                currency="USD",
            )
        ],
    ],
)
@pytest.mark.parametrize(
    "rules",
    [
        [ev.ScopeRule(product_ids=["p-kettle"])],
        [
            ev.ScopeRule(
                product_ids=["p-kettle"],
                lots=ev.CodeRule(values=["A1"]),
                serials=ev.CodeRule(prefixes=["SN"]),
            )
        ],
        [ev.ScopeRule(product_ids=["p-kettle"], manufactured=ev.DateWindow(start=T0.date()))],
    ],
)
def test_event_body_is_exactly_what_the_model_would_write(
    lines: list[Line], rules: list[ev.ScopeRule]
) -> None:
    recall = snapshot(*rules)
    draft = build_alert(recall, "c-1", lines)
    assert draft is not None
    body = alert_event_body(draft, 3, orjson.Fragment(recall.content.model_dump_json()))
    expected = ev.AlertRaised(alert=draft.state.model_copy(update={"alert_version": 3}))
    # the same JSON, field for field, as pydantic writes it, and it reads back to the same event
    assert orjson.loads(body) == orjson.loads(expected.model_dump_json())
    assert ev.AlertRaised.model_validate_json(body) == expected


# --------------------------------------------------------------------- catch_up (announced, no row)


def test_an_announced_alert_nothing_reaches_any_more_is_withdrawn() -> None:
    announced = Announced(draft_for(line()).fingerprint, "confirmed", 1)
    assert catch_up(announced, None, 1) == "withdraw"


def test_an_announced_alert_with_the_same_content_is_sent_again_as_it_was() -> None:
    d = draft_for(line())
    assert catch_up(Announced(d.fingerprint, d.tier, 1), d, 1) == "resend"


def test_an_announced_alert_whose_content_changed_is_updated_under_a_new_version() -> None:
    announced = Announced(draft_for(line(quantity=2)).fingerprint, "confirmed", 1)
    returned = draft_for(line()._replace(quantity=2, returned_quantity=1))
    assert catch_up(announced, returned, 1) == "update"
    assert next_version(announced.previous, returned) == 2


def test_an_announced_alert_of_an_older_recall_version_is_updated_in_the_same_alert_version() -> (
    None
):
    d = draft_for(line(), version=2)
    announced = Announced(d.fingerprint, d.tier, 1)
    assert catch_up(announced, d, 2) == "update"
    assert next_version(announced.previous, d) == 1  # the event id differs by recall version


# ------------------------------------------------------------------------ returns and cancellations


def units(quantity: int = 1, returned: int = 0, cancelled: bool = False, **kw: str) -> LineUnits:
    facts = {"line_id": "l-1", "order_id": "o-1", "customer_id": "c-1"} | kw
    return LineUnits(
        facts["line_id"], facts["order_id"], facts["customer_id"], quantity, returned, cancelled
    )


def test_a_return_of_what_remains_is_accepted() -> None:
    assert return_refusal(units(3, returned=1), "o-1", "c-1", 2) is None
    assert return_refusal(None, "o-1", "c-1", 99) is None  # a line the index never saw


def test_a_return_larger_than_what_remains_is_refused() -> None:
    assert return_refusal(units(1), "o-1", "c-1", 99) == (
        "return of 99 units of line 'l-1', but 1 of 1 remain"
    )
    assert "0 of 3 remain" in (return_refusal(units(3, returned=3), "o-1", "c-1", 1) or "")
    assert "cancelled" in (return_refusal(units(2, cancelled=True), "o-1", "c-1", 1) or "")


def test_a_return_of_another_order_or_customer_s_line_is_refused() -> None:
    assert "on order 'o-2'" in (return_refusal(units(order_id="o-2"), "o-1", "c-1", 1) or "")
    assert "another customer" in (return_refusal(units(customer_id="c-9"), "o-1", "c-1", 1) or "")


def test_a_cancellation_is_refused_only_where_facts_contradict_it() -> None:
    assert cancellation_refusal([units(2, returned=1)], "o-1", "c-1", ["l-1"]) is None
    assert cancellation_refusal([units(cancelled=True)], "o-1", "c-1", ["l-1"]) is None  # a repeat
    assert cancellation_refusal([units(2, returned=2)], "o-1", "c-1", None) is None  # whole order
    assert cancellation_refusal([], "o-1", "c-1", ["unknown"]) is None
    assert cancellation_refusal([units(2, returned=2)], "o-1", "c-1", ["l-1"]) == (
        "cancellation of line 'l-1', but all 2 units were returned"
    )
    assert "another customer" in (
        cancellation_refusal([units(customer_id="c-9")], "o-1", "c-1", None) or ""
    )
    assert "on order 'o-2'" in (
        cancellation_refusal([units(order_id="o-2")], "o-1", "c-1", ["l-1"]) or ""
    )
