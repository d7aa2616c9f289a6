"""Pieces of customer-api that need no database or broker: request schemas, summaries, severity
order."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import get_args

import pytest
from pydantic import ValidationError

from customer_api.api import NotAffectedIn, RemedyChoice, _summary
from customer_api.handlers import FINAL_CASE_STATES, SEVERITY_RANK
from customer_api.models import CustomerAlert
from recall_shared import events as ev


def test_remedy_choice_accepts_only_known_remedies_and_no_extra_fields() -> None:
    assert RemedyChoice.model_validate({"remedy": "repair"}).remedy == "repair"
    for bad in ({}, {"remedy": "cash"}, {"remedy": "repair", "customer_id": "someone-else"}):
        with pytest.raises(ValidationError):
            RemedyChoice.model_validate(bad)


def test_not_affected_reason_is_bounded() -> None:
    assert NotAffectedIn().reason == ""
    with pytest.raises(ValidationError):
        NotAffectedIn.model_validate({"reason": "x" * 1001})
    with pytest.raises(ValidationError):
        NotAffectedIn.model_validate({"reason": "ok", "alert_id": "other"})


def test_severity_rank_puts_critical_first() -> None:
    ordered = sorted(SEVERITY_RANK, key=SEVERITY_RANK.__getitem__)
    assert ordered == ["critical", "high", "medium", "low"]
    assert set(SEVERITY_RANK) == set(get_args(ev.Severity))


def test_final_case_states_are_real_states_and_exclude_in_progress_ones() -> None:
    assert set(get_args(ev.CaseState)) >= FINAL_CASE_STATES
    assert {"requested", "label_issued", "item_received", "referred_to_seller"}.isdisjoint(
        FINAL_CASE_STATES
    )
    assert "refunded" in FINAL_CASE_STATES


def test_summary_sums_units_over_lines_and_reflects_acknowledgement() -> None:
    now = datetime.now(UTC)
    line = dict(
        order_id="o",
        product_id="p",
        seller_id="s",
        purchased_at=now,
        unit_price="5.00",
        currency="EUR",
    )
    state = ev.AlertState(
        alert_id="a-1",
        alert_version=1,
        customer_id="c-1",
        recall_id="r-1",
        recall_version=1,
        seller_id="s",
        tier="confirmed",
        lines=[
            ev.AffectedLine(line_id="l1", units=2, **line),
            ev.AffectedLine(line_id="l2", units=3, **line),
        ],
        recall=ev.RecallContent(
            title="T",
            hazard="H",
            severity="medium",
            stop_using="Stop",
            remedies=[ev.Remedy(type="repair")],
            images=["https://img.example/1.jpg"],
        ),
    )
    row = CustomerAlert(
        alert_id="a-1",
        customer_id="c-1",
        recall_id="r-1",
        alert_version=1,
        status="open",
        resolution=None,
        severity_rank=2,
        state=state.model_dump(mode="json"),
        acknowledged_at=now,
        created_at=now,
        updated_at=now,
    )
    s = _summary(row)
    assert s.units == 5
    assert s.acknowledged is True
    assert s.severity == "medium" and s.title == "T" and s.images == ["https://img.example/1.jpg"]
