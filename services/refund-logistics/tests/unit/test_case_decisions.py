"""What a case waits for and does next (domain.py), free of I/O."""

from __future__ import annotations

import dataclasses

import pytest

from refund_logistics.domain import (
    WAITING_FOR_VALUES,
    CaseConflict,
    CaseFacts,
    IllegalCaseTransition,
    NextStep,
    check_proof_accepted,
    check_rejectable,
    fulfilment_transition,
    item_already_received,
    label_failed,
    next_step,
    nothing_due_rejects,
    settlement,
    waits_for_read_model,
)

KNOWN = CaseFacts(
    remedy="refund_on_destruction",
    customer_id="c1",
    recall_id="r1",
    recall_known=True,
    alert_known=True,
    alert_customer_id="c1",
    alert_recall_id="r1",
    alert_status="open",
    enrolled=True,
    consumer_contact="Acme, 0800 1",
)


def facts(**changes: object) -> CaseFacts:
    return dataclasses.replace(KNOWN, **changes)  # type: ignore[arg-type]


def test_an_unknown_recall_or_alert_is_waited_for_recall_first() -> None:
    assert next_step(facts(recall_known=False, alert_known=False)) == NextStep("wait", "recall")
    assert next_step(facts(alert_known=False)) == NextStep("wait", "alert")
    assert waits_for_read_model("recall") and waits_for_read_model("alert")
    assert not any(waits_for_read_model(w) for w in WAITING_FOR_VALUES - {"recall", "alert"})


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"alert_customer_id": "c2"}, "the alert belongs to another customer"),
        ({"alert_recall_id": "r2"}, "the alert is not for this recall"),
        ({"alert_status": "withdrawn"}, "the alert was withdrawn: the purchase is not affected"),
    ],
)
def test_a_case_that_does_not_fit_its_alert_is_rejected(
    changes: dict[str, object], reason: str
) -> None:
    assert next_step(facts(**changes)) == NextStep("reject", reason=reason)


def test_the_customer_check_comes_before_enrolment() -> None:
    step = next_step(facts(alert_customer_id="c2", enrolled=False))
    assert step.action == "reject"


def test_a_recall_not_run_by_rls_is_referred_with_the_sellers_contact() -> None:
    assert next_step(facts(enrolled=False)) == NextStep(
        "refer_to_seller", reason="The seller handles this remedy directly. Contact: Acme, 0800 1"
    )
    assert next_step(facts(enrolled=False, consumer_contact="")).reason == (
        "The seller handles this remedy directly. Contact: the seller"
    )


@pytest.mark.parametrize(
    ("remedy", "step"),
    [
        ("refund_on_destruction", NextStep("wait", "proof")),
        ("refund_with_return", NextStep("issue_label")),
        ("replacement", NextStep("wait", "seller")),
        ("repair", NextStep("wait", "seller")),
    ],
)
def test_each_remedy_starts_with_its_own_step(remedy: str, step: NextStep) -> None:
    assert next_step(facts(remedy=remedy)) == step


def test_a_closed_alert_still_gets_its_remedy() -> None:
    assert next_step(facts(alert_status="closed")) == NextStep("wait", "proof")


def test_a_carrier_failure_waits_when_transient_else_rejects() -> None:
    assert label_failed(True) == NextStep("wait", "label")
    assert label_failed(False).action == "reject"


def test_a_proof_is_taken_only_for_a_refund_on_destruction_that_can_still_be_refunded() -> None:
    check_proof_accepted("refund_on_destruction", "requested", "proof")
    with pytest.raises(CaseConflict, match="this case is refund_with_return"):
        check_proof_accepted("refund_with_return", "label_issued", "item")
    with pytest.raises(IllegalCaseTransition):
        check_proof_accepted("refund_on_destruction", "rejected", None)
    with pytest.raises(CaseConflict, match="waiting for its alert; try again shortly"):
        check_proof_accepted("refund_on_destruction", "requested", "alert")


def test_a_repeated_item_webhook_is_recognised() -> None:
    for state in ("item_received", "refunded", "closed"):
        assert item_already_received("refund_with_return", state)
    assert not item_already_received("refund_with_return", "label_issued")
    assert not item_already_received("refund_on_destruction", "refunded")


def test_a_fulfilment_fits_only_a_sellers_case_that_waits_for_it() -> None:
    assert fulfilment_transition("replacement", None, "requested", "seller") == "ship_replacement"
    assert fulfilment_transition("repair", "repair", "requested", "seller") == "repair"
    with pytest.raises(CaseConflict, match="completed by RLS"):
        fulfilment_transition("refund_with_return", None, "label_issued", "item")
    with pytest.raises(CaseConflict, match="asks for a replacement, not a repair"):
        fulfilment_transition("replacement", "repair", "requested", "seller")
    with pytest.raises(IllegalCaseTransition):
        fulfilment_transition("replacement", None, "replacement_shipped", None)
    with pytest.raises(CaseConflict, match="waiting for its alert"):
        fulfilment_transition("replacement", None, "requested", "alert")


def test_a_case_being_paid_cannot_be_rejected() -> None:
    check_rejectable("proof")
    check_rejectable(None)
    with pytest.raises(CaseConflict, match="being paid"):
        check_rejectable("payment")


def test_nothing_left_to_refund_rejects_only_a_case_still_requested() -> None:
    assert nothing_due_rejects("requested")
    assert not nothing_due_rejects("item_received")


@pytest.mark.parametrize(
    ("statuses", "waiting_for", "outcome"),
    [
        (["pending", "paid"], "payment", "pending"),
        (["pending"], None, "pending"),
        (["paid"], None, "not_paying"),  # another caller recorded it first
        (["paid", "failed"], "payment", "failed"),
        (["paid", "paid"], "payment", "paid"),
    ],
)
def test_settlement(statuses: list[str], waiting_for: str | None, outcome: str) -> None:
    assert settlement(statuses, waiting_for) == outcome
