"""The channel policy's later steps (issue 15): a letter after email and SMS where the severity
allows it, the fall back after N days without a confirmed delivery, and when a queued letter goes
into the batch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from notifier.domain import (
    ClaimedNotice,
    Hold,
    Send,
    decide_letter,
    fallback_channel,
    opened_since,
    unconfirmed_fallback_due,
)

SENT = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def after(channel: str, **kw: object) -> str | None:
    values: dict = dict(
        channel=channel,
        severity="high",
        kind="initial",
        phone="+4915112345678",
        sms_opt_out=False,
        sms_available=True,
        postal=True,
        letter_opt_out=False,
        letters_available=True,
    )
    values.update(kw)
    return fallback_channel(**values)


def test_a_letter_comes_after_email_and_sms_where_the_severity_allows_it() -> None:
    assert after("email") == "sms"
    assert after("sms") == "letter"
    assert after("email", phone=None) == "letter", "no number: straight to the letter"
    assert after("email", sms_opt_out=True) == "letter"
    assert after("letter") is None, "nothing after a letter"
    assert after("sms", severity="critical") == "letter"
    assert after("sms", severity="medium") is None, "medium: email and SMS only"
    assert after("email", severity="medium", phone=None) is None
    assert after("email", severity="low") is None
    assert after("sms", severity="unheard-of") == "letter", "unknown severity: the cautious side"


def test_a_letter_needs_an_address_consent_and_the_channel() -> None:
    assert after("sms", postal=False) is None
    assert after("sms", letter_opt_out=True) is None
    assert after("sms", letters_available=False) is None
    assert after("sms", kind="reminder") is None, "reminders stay on email"
    assert after("sms", kind="withdrawal") == "letter", (
        "a correction reaches them as the notice did"
    )


def due(days: float, **kw: object) -> bool:
    values: dict = dict(
        channel="email",
        severity="high",
        kind="initial",
        sent_at=SENT,
        delivery=None,
        responded=False,
        now=SENT + timedelta(days=days),
    )
    values.update(kw)
    return unconfirmed_fallback_due(**values)


def test_the_fall_back_after_n_days_waits_the_days_of_the_severity() -> None:
    assert not due(2.9) and due(3), "high: three days"
    assert not due(1.9, severity="critical") and due(2, severity="critical")
    assert not due(6.9, severity="medium") and due(7, severity="medium")
    assert not due(365, severity="low"), "low: never on time alone"
    assert due(2, severity="whatever"), "unknown severity: as critical"


def test_anything_that_says_it_arrived_stops_the_fall_back() -> None:
    assert not due(30, delivery="delivered")
    assert not due(30, delivery="complained")
    assert not due(30, delivery="bounced"), "a bounce falls back at once, not after days"
    assert not due(30, responded=True), "the customer answered: they were reached"
    assert not due(30, kind="reminder")
    assert not due(30, channel="letter"), "letters report nothing: nothing to wait for"
    assert due(30, channel="sms"), "an SMS never confirmed is followed by a letter"


def test_a_queued_letter_goes_out_unless_something_stopped_it() -> None:
    notice = ClaimedNotice("initial", "purchaser", "open", False, False, None, None)
    assert decide_letter(notice, has_address=True, letter_opt_out=False) == Send(
        "letter", "postal", "purchaser"
    )
    assert decide_letter(notice, has_address=False, letter_opt_out=False) == Hold("waiting_contact")
    assert decide_letter(notice, has_address=True, letter_opt_out=True) == Hold("waiting_contact")
    withdrawn = ClaimedNotice("initial", "purchaser", "withdrawn", False, False, None, None)
    assert decide_letter(withdrawn, has_address=True, letter_opt_out=False) == Hold(
        "cancelled", "alert withdrawn"
    )


def test_an_opened_alert_is_not_followed_up() -> None:
    assert not due(30, opened=True), "the customer opened the alert page: they were reached"
    assert due(3, opened=False), "not opened after the days: the next channel"
    assert not due(3.5, opened=True), (
        "opened after the days had passed, before the fall back looked: still reached"
    )


def test_a_view_counts_for_the_version_it_showed_and_earlier_ones() -> None:
    assert opened_since(1, 1) and opened_since(1, 3), "the page showed what the notice told"
    assert not opened_since(2, 1), "a view before an update says nothing of the update's notice"
    assert not opened_since(1, None), "never opened"
