"""Seller notices' pure decisions: the acknowledgement cycle, what is overdue, when a seller is
told again, a Letter of Compliance's decisions, the webhook signature and the retry delays."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest

from recall_intake.domain import (
    IllegalTransition,
    delivered,
    letter_decision,
    notice_change,
    notice_overdue,
    notice_step,
    retry_delay_s,
    verify_webhook_signature,
    webhook_address_allowed,
    webhook_signature,
)

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


def test_the_cycle_goes_forward_and_a_repeat_changes_nothing() -> None:
    assert notice_step("notified", "acknowledge") == ("acknowledged", True)
    assert notice_step("acknowledged", "acknowledge") == ("acknowledged", False)
    assert notice_step("acknowledged", "confirm_removal") == ("removal_confirmed", True)
    assert notice_step("removal_confirmed", "confirm_removal") == ("removal_confirmed", False)
    assert notice_step("removal_confirmed", "close") == ("closed", True)
    assert notice_step("closed", "close") == ("closed", False)


def test_a_removal_confirmation_without_an_acknowledgement_acknowledges_it() -> None:
    assert notice_step("notified", "confirm_removal") == ("removal_confirmed", True)


def test_an_acknowledgement_after_the_removal_is_a_step_already_taken() -> None:
    assert notice_step("removal_confirmed", "acknowledge") == ("removal_confirmed", False)
    assert notice_step("closed", "acknowledge") == ("closed", False)


@pytest.mark.parametrize("status", ["notified", "acknowledged"])
def test_no_closeout_before_the_removal_is_confirmed(status: str) -> None:
    with pytest.raises(IllegalTransition):
        notice_step(status, "close")


def test_overdue_is_unacknowledged_past_its_due_time() -> None:
    due = NOW - timedelta(seconds=1)
    assert notice_overdue("notified", due, NOW)
    assert notice_overdue("notified", NOW, NOW)
    assert not notice_overdue("notified", NOW + timedelta(hours=1), NOW)
    assert not notice_overdue("acknowledged", due, NOW)
    assert not notice_overdue("removal_confirmed", due, NOW)


def test_the_signature_is_stripes_hmac_over_timestamp_and_body() -> None:
    body = b'{"id":"whd_1"}'
    header = webhook_signature("whsec_test", 1_700_000_000, body)
    expected = hmac.new(b"whsec_test", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={expected}"


def test_a_receiver_accepts_the_signature_and_refuses_tampering_or_an_old_timestamp() -> None:
    body = b'{"id":"whd_1"}'
    header = webhook_signature("whsec_test", 1_700_000_000, body)
    assert verify_webhook_signature("whsec_test", header, body, now=1_700_000_100)
    assert not verify_webhook_signature("whsec_test", header, body + b" ", now=1_700_000_100)
    assert not verify_webhook_signature("whsec_other", header, body, now=1_700_000_100)
    assert not verify_webhook_signature("whsec_test", header, body, now=1_700_000_400)
    assert not verify_webhook_signature("whsec_test", "v1=abc", body, now=1_700_000_000)


def test_retry_delays_double_up_to_the_cap_with_jitter_in_the_upper_half() -> None:
    assert [retry_delay_s(n, 30, 3600, 0.0) for n in (1, 2, 3)] == [15, 30, 60]
    assert retry_delay_s(1, 30, 3600, 0.999) == pytest.approx(30, abs=0.1)
    assert retry_delay_s(20, 30, 3600, 0.0) == 1800
    assert retry_delay_s(20, 30, 3600, 0.999) <= 3600


def test_only_a_2xx_is_delivered() -> None:
    assert delivered(200) and delivered(204)
    assert not delivered(301) and not delivered(410) and not delivered(500)


def test_webhooks_go_to_public_addresses_only_unless_private_networks_are_allowed() -> None:
    assert webhook_address_allowed("93.184.216.34", allow_private=False)
    assert webhook_address_allowed("2606:2800:220:1:248:1893:25c8:1946", allow_private=False)
    for private in ("127.0.0.1", "10.1.2.3", "192.168.0.9", "169.254.169.254", "::1", "fe80::1%2"):
        assert not webhook_address_allowed(private, allow_private=False), private
        assert webhook_address_allowed(private, allow_private=True), private
    assert not webhook_address_allowed("not-an-address", allow_private=True)


def test_a_seller_is_told_again_only_of_more_to_take_off_sale() -> None:
    listed, lifted = ["kettle"], ["toaster"]
    # The same listing declared again (an amendment's new tier): nothing more to do.
    assert notice_change(listed, [], "kettle", told=True) == "none"
    # Another listing: it joins what has not gone out yet, or tells the seller again.
    assert notice_change(listed, [], "kettle-blue", told=False) == "join"
    assert notice_change(listed, [], "kettle-blue", told=True) == "update"
    # A listing a lift had made sellable, stopped again (a letter withdrawn): news again.
    assert notice_change([*listed, "toaster"], lifted, "toaster", told=True) == "update"


def test_a_letter_is_decided_once_and_only_an_accepted_one_is_withdrawn() -> None:
    assert letter_decision("submitted", "accept") == ("accepted", True)
    assert letter_decision("accepted", "accept") == ("accepted", False)
    assert letter_decision("accepted", "withdraw") == ("withdrawn", True)
    assert letter_decision("withdrawn", "withdraw") == ("withdrawn", False)
    for status, decision in (
        ("submitted", "withdraw"),  # nothing to take back yet
        ("rejected", "withdraw"),
        ("withdrawn", "accept"),  # the seller files a new letter
        ("accepted", "reject"),
    ):
        with pytest.raises(IllegalTransition):
            letter_decision(status, decision)  # type: ignore[arg-type]
