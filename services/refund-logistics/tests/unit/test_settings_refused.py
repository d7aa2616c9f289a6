"""refund-logistics refuses to start on a party that cannot work, naming the variable."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from refund_logistics.settings import Settings

SECRETS = {"jwt_secret": "j" * 40, "api_key_pepper": "p" * 40}


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"payment_provider": "http"},
            "REFUND_LOGISTICS_PAYMENT_API_KEY must be set to the party's API key (printable, "
            "without surrounding whitespace) when REFUND_LOGISTICS_PAYMENT_PROVIDER=http",
        ),
        (
            {"payment_provider": "http", "payment_api_key": "sk_live_1 "},
            "REFUND_LOGISTICS_PAYMENT_API_KEY must be set",
        ),
        ({"carrier": "http"}, "REFUND_LOGISTICS_CARRIER_API_KEY must be set"),
        (
            {"carrier": "http", "carrier_api_key": "ck", "carrier_base_url": "carrier.example"},
            "REFUND_LOGISTICS_CARRIER_BASE_URL must be an http(s) URL",
        ),
        (
            {"environment": "production", **SECRETS},
            "REFUND_LOGISTICS_PAYMENT_PROVIDER=sandbox in production",
        ),
        (
            {
                "environment": "production",
                **SECRETS,
                "payment_provider": "http",
                "payment_api_key": "sk",
                "payment_base_url": "http://pay.example",
            },
            "REFUND_LOGISTICS_PAYMENT_BASE_URL must be https in production",
        ),
        ({"jwt_public_key": "not a key"}, "REFUND_LOGISTICS_JWT_PUBLIC_KEY is not an RS256"),
    ],
)
def test_an_unusable_combination_is_refused_naming_the_variable(
    values: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError) as err:
        Settings(**values)  # type: ignore[arg-type]
    assert message in str(err.value)


def test_usable_combinations_start() -> None:
    assert Settings().payment_provider == "sandbox"  # development: the sandbox in process
    s = Settings(
        payment_provider="http",
        payment_api_key="sk_test",
        carrier="http",
        carrier_api_key="ck_test",
    )
    assert s.payment_base_url.startswith("http://127.0.0.1")
    Settings(
        environment="production",
        **SECRETS,  # type: ignore[arg-type]
        payment_provider="http",
        payment_api_key="sk_live",
        payment_base_url="https://pay.example",
        carrier="http",
        carrier_api_key="ck_live",
        carrier_base_url="https://carrier.example",
    )
