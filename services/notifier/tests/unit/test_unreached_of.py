"""``Unreached.of``: one way from a notice row to what the fallback policy needs."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from notifier.fallback import Unreached

ROW: dict[str, object] = {
    "notice_id": "n-1",
    "alert_id": "a-1",
    "customer_id": "c-1",
    "recipient_customer_id": "c-2",
    "recipient_role": "purchaser",
    "kind": "initial",
    "alert_version": 2,
    "reminder_no": 0,
    "severity": "high",
    "phone": "+4915100000000",
    "sms_opt_out": None,
}


def test_a_row_without_a_channel_is_an_email_and_given_values_win() -> None:
    got = Unreached.of(SimpleNamespace(**ROW))
    assert got == Unreached(
        notice_id="n-1",
        alert_id="a-1",
        customer_id="c-1",
        recipient_customer_id="c-2",
        recipient_role="purchaser",
        kind="initial",
        alert_version=2,
        reminder_no=0,
        severity="high",
        phone="+4915100000000",
        sms_opt_out=False,
    )
    assert got.channel == "email"
    sms = Unreached.of(SimpleNamespace(**ROW, channel="email"), severity="critical", channel="sms")
    assert (sms.severity, sms.channel) == ("critical", "sms")
    assert Unreached.of(SimpleNamespace(**ROW), notice_id="n-9").notice_id == "n-9"


def test_a_row_missing_a_column_is_refused() -> None:
    incomplete = {k: v for k, v in ROW.items() if k != "phone"}
    with pytest.raises(AttributeError):
        Unreached.of(SimpleNamespace(**incomplete))
