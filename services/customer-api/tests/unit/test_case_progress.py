"""What the customer's case shows (case_progress.py), free of I/O."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from customer_api.case_progress import may_upload_proof, needed, rejected_last, timeline


def test_the_timeline_is_in_time_order_and_skips_steps_it_does_not_know() -> None:
    entries: list[dict[str, Any]] = [
        {"step": "issue_refund", "at": "2026-12-01T12:05:00+00:00"},
        {"step": "open", "at": "2026-12-01T12:00:00+00:00"},
        {"step": "a_future_step", "at": "2026-12-01T12:01:00+00:00"},
        {"step": "proof_accepted", "at": "2026-12-01T12:04:00+00:00", "attempt": 1},
        {"step": "open"},  # no time: left out
    ]
    assert [(s.key, s.at) for s in timeline(entries)] == [
        ("timeline.open", datetime(2026, 12, 1, 12, 0, tzinfo=UTC)),
        ("timeline.proof_accepted", datetime(2026, 12, 1, 12, 4, tzinfo=UTC)),
        ("timeline.issue_refund", datetime(2026, 12, 1, 12, 5, tzinfo=UTC)),
    ]


@pytest.mark.parametrize(
    ("remedy", "state", "waiting_for", "rejected", "need"),
    [
        ("refund_on_destruction", "requested", "proof", False, "needed.proof"),
        ("refund_on_destruction", "requested", "proof", True, "needed.proof_again"),
        ("refund_on_destruction", "requested", "review", False, "needed.review"),
        ("refund_on_destruction", "requested", "payment", False, "needed.payment"),
        ("refund_with_return", "requested", "label", False, "needed.label"),
        ("refund_with_return", "label_issued", "item", False, "needed.item"),
        ("replacement", "requested", "seller", False, "needed.seller"),
        ("replacement", "requested", "alert", False, "needed.processing"),
        ("refund_on_destruction", "refunded", None, False, None),
        ("refund_on_destruction", "rejected", None, False, None),
        ("replacement", "referred_to_seller", None, False, None),
    ],
)
def test_what_is_still_needed(
    remedy: str, state: str, waiting_for: str | None, rejected: bool, need: str | None
) -> None:
    assert needed(remedy, state, waiting_for, True, rejected) == need


def test_the_upload_is_offered_only_while_the_photo_is_awaited() -> None:
    assert may_upload_proof("refund_on_destruction", "requested", "proof", True)
    # A case from before refund-logistics said what it waits for.
    assert may_upload_proof("refund_on_destruction", "requested", None, True)
    assert not may_upload_proof("refund_on_destruction", "requested", None, False)  # no case yet
    assert not may_upload_proof("refund_on_destruction", "requested", "review", True)
    assert not may_upload_proof("refund_on_destruction", "refunded", None, True)
    assert not may_upload_proof("refund_with_return", "requested", "proof", True)


def test_a_rejection_is_the_last_word_until_another_photo_is_reviewed() -> None:
    assert not rejected_last([{"step": "open"}])
    assert rejected_last([{"step": "proof_under_review"}, {"step": "proof_rejected"}])
    assert not rejected_last(
        [{"step": "proof_rejected"}, {"step": "proof_under_review"}, {"step": "issue_refund"}]
    )
