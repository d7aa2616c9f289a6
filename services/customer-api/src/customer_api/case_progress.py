"""What the customer's case shows, free of I/O: the timeline of what happened and what is still
needed from them, from the read model that remedies.v1 fills (handlers.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from recall_shared.remedy_states import ENDED_CASE_STATES

# Timeline steps (case transitions and proof review steps) -> their i18n key.
STEP_KEYS = {
    "open": "timeline.open",
    "refer_to_seller": "timeline.refer_to_seller",
    "issue_label": "timeline.issue_label",
    "receive_item": "timeline.receive_item",
    "proof_under_review": "timeline.proof_under_review",
    "proof_accepted": "timeline.proof_accepted",
    "proof_rejected": "timeline.proof_rejected",
    "issue_refund": "timeline.issue_refund",
    "ship_replacement": "timeline.ship_replacement",
    "repair": "timeline.repair",
    "close": "timeline.close",
    "reject": "timeline.reject",
}


@dataclass(frozen=True)
class TimelineStep:
    key: str  # the i18n key of its label
    at: datetime


def timeline(entries: list[dict[str, Any]]) -> list[TimelineStep]:
    """The steps the case went through, oldest first; unknown steps (a newer producer) are left
    out."""
    steps = [
        TimelineStep(STEP_KEYS[e["step"]], datetime.fromisoformat(e["at"]))
        for e in entries
        if e.get("step") in STEP_KEYS and isinstance(e.get("at"), str)
    ]
    return sorted(steps, key=lambda s: s.at)


Need = str  # an i18n key under "needed."


def needed(
    remedy: str, state: str, waiting_for: str | None, has_case: bool, rejected_before: bool
) -> Need | None:
    """What is still needed from the customer (or what they are waiting for), as an i18n key;
    None when the case has ended."""
    if state in ENDED_CASE_STATES or state == "referred_to_seller":
        return None
    if may_upload_proof(remedy, state, waiting_for, has_case):
        return "needed.proof_again" if rejected_before else "needed.proof"
    return {
        "review": "needed.review",
        "label": "needed.label",
        "item": "needed.item",
        "payment": "needed.payment",
        "seller": "needed.seller",
    }.get(waiting_for or "", "needed.processing")


def may_upload_proof(remedy: str, state: str, waiting_for: str | None, has_case: bool) -> bool:
    """The upload form is shown while the case waits for the photo (for cases from before
    refund-logistics said what it waits for: a refund on destruction still requested)."""
    if remedy != "refund_on_destruction" or state != "requested" or not has_case:
        return False
    return waiting_for in ("proof", None)


def rejected_last(entries: list[dict[str, Any]]) -> bool:
    """The last proof review step was a rejection (the customer is asked for another photo)."""
    reviews = [e["step"] for e in entries if str(e.get("step", "")).startswith("proof_")]
    return bool(reviews) and reviews[-1] == "proof_rejected"
