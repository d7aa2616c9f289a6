"""The notifier refuses to start on settings with which no notice could go out, naming the
variable."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from notifier.settings import Settings


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"smtp_username": "relay-user"},
            "NOTIFIER_SMTP_PASSWORD must be set with NOTIFIER_SMTP_USERNAME",
        ),
        (
            {"smtp_password": "secret"},
            "NOTIFIER_SMTP_USERNAME must be set with NOTIFIER_SMTP_PASSWORD",
        ),
        ({"mail_from": "Recall Alerts"}, "NOTIFIER_MAIL_FROM is not a usable sender"),
        ({"mail_from": "Recalls <not an address>"}, "NOTIFIER_MAIL_FROM"),
        ({"customer_portal_url": "shop.example/account"}, "NOTIFIER_CUSTOMER_PORTAL_URL must be"),
        (
            {"send_backoff_initial_s": 60, "send_backoff_max_s": 5},
            "NOTIFIER_SEND_BACKOFF_INITIAL_S must not exceed NOTIFIER_SEND_BACKOFF_MAX_S",
        ),
    ],
)
def test_an_unusable_combination_is_refused_naming_the_variable(
    values: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError) as err:
        Settings(**values)
    assert message in str(err.value)


def test_usable_combinations_start() -> None:
    Settings()
    s = Settings(
        smtp_username="relay-user",
        smtp_password="secret",
        mail_from="Shop safety <safety@shop.example>",
        customer_portal_url="https://shop.example/account",
    )
    assert s.smtp_username == "relay-user"
