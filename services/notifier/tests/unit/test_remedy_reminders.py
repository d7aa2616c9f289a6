"""Reminders until the remedy is complete: which waits are reminded, their numbers and what they
say (remedy_reminders.py, render.py), free of I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from notifier.remedy_reminders import (
    REMEDY_REMINDER_FIRST,
    case_stopped,
    due_count,
    reminded_wait,
    reminder_number,
    reminder_reason,
)


@pytest.mark.parametrize(
    ("state", "waiting_for", "wait"),
    [
        ("requested", "proof", "proof"),
        ("label_issued", "item", "item"),
        ("requested", "review", None),
        ("requested", "payment", None),
        ("requested", "seller", None),
        ("requested", "alert", None),
        ("requested", None, None),
        ("refunded", None, None),
        ("rejected", "proof", None),
    ],
)
def test_only_waits_for_the_customer_are_reminded(
    state: str, waiting_for: str | None, wait: str | None
) -> None:
    assert reminded_wait(state, waiting_for) == wait


def test_the_end_of_a_case_stops_its_reminders() -> None:
    for state in ("refunded", "replacement_shipped", "repaired", "closed", "rejected"):
        assert case_stopped(state) == state
    assert case_stopped("referred_to_seller") == "referred_to_seller"
    assert case_stopped("requested") is None and case_stopped("label_issued") is None


def test_numbers_never_meet_the_choose_a_remedy_reminders_and_say_what_they_are_about() -> None:
    assert reminder_number("proof", 0) == 101 and reminder_number("proof", 1) == 102
    assert reminder_number("item", 0) == 201 and reminder_number("item", 1) == 202
    assert min(reminder_number(w, 0) for w in ("proof", "item")) > REMEDY_REMINDER_FIRST
    assert [reminder_reason(n) for n in (1, 2, 101, 105, 201, 202, 203)] == [
        None,
        None,
        "proof_missing",
        "proof_missing",
        "label_unused",
        "item_not_received",
        "item_not_received",
    ]


def test_due_count_counts_the_schedule_dates_passed() -> None:
    since = datetime(2026, 1, 1, tzinfo=UTC)
    schedule = (7.0, 21.0)
    assert due_count(since, since + timedelta(days=6, hours=23), schedule) == 0
    assert due_count(since, since + timedelta(days=7), schedule) == 1
    assert due_count(since, since + timedelta(days=400), schedule) == 2
