from decimal import Decimal
from typing import Literal, Self

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from recall_shared.auth import public_key_problem
from recall_shared.http_settings import HttpServiceSettings


class Settings(HttpServiceSettings):
    model_config = SettingsConfigDict(env_prefix="REFUND_LOGISTICS_", extra="ignore", frozen=True)

    service_name: str = "refund-logistics"
    http_port: int = 8004
    database_url: str = (
        "postgresql+asyncpg://refund_logistics:refund_logistics@127.0.0.1:5432/refund_logistics"
    )
    # External parties: "sandbox" runs the sandbox in process; "http" uses the HTTP adapters (point
    # them at `python -m refund_logistics.sandbox --port 8091` in development, at the real party in
    # production, where the sandbox is refused: its refunds pay nobody).
    payment_provider: Literal["sandbox", "http"] = "sandbox"
    payment_base_url: str = "http://127.0.0.1:8091"
    payment_api_key: str = ""
    carrier: Literal["sandbox", "http"] = "sandbox"
    carrier_base_url: str = "http://127.0.0.1:8091"
    carrier_api_key: str = ""
    return_warehouse: str = "RLS returns centre, Recall Alerts Logistics, 1 Warehouse Way"
    case_fee: Decimal = Decimal("2.50")
    # Refund settlement: a claimed refund intent is not retried by anyone else before its lease
    # ends; the recovery loop settles intents whose lease ran out (a crash, a transient provider
    # failure).
    refund_lease_s: float = Field(default=30.0, gt=0)
    refund_recovery_interval_s: float = Field(default=5.0, gt=0)
    proof_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1)
    # Proof of destruction checks and review (RLS.md "Proof review"): a smaller photo is refused;
    # an unflagged proof for a case worth at most this pays without an operator's review (0: every
    # proof is reviewed); a flagged one (a duplicate photo) always waits for review.
    proof_min_side_px: int = Field(default=200, ge=1)
    proof_pay_without_review_up_to: Decimal = Field(default=Decimal("100.00"), ge=0)
    # Customer tokens (proof of destruction uploads), as customer-api verifies them.
    jwt_public_key: str | None = None
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    jwt_max_lifetime_s: int = Field(
        default=24 * 3600, gt=0, description="Customer tokens that would live longer are refused"
    )

    @model_validator(mode="after")
    def _parties_usable(self) -> Self:
        """Refuse to start on a party that cannot work, naming the variable: an HTTP party without a
        usable key fails every call in a way that looks transient, so refunds would stay pending."""
        for provider, key, url in (
            ("payment_provider", "payment_api_key", "payment_base_url"),
            ("carrier", "carrier_api_key", "carrier_base_url"),
        ):
            chosen = f"{self._var(provider)}={getattr(self, provider)}"
            if getattr(self, provider) == "sandbox":
                if self.environment == "production":
                    raise ValueError(f"{chosen} in production: the sandbox pays and ships nothing")
                continue
            value, base = getattr(self, key), getattr(self, url)
            if not value or value != value.strip() or not value.isprintable():
                raise ValueError(
                    f"{self._var(key)} must be set to the party's API key (printable, without "
                    f"surrounding whitespace) when {chosen}"
                )
            if not base.startswith(("https://", "http://")):
                raise ValueError(f"{self._var(url)} must be an http(s) URL when {chosen}")
            if self.environment == "production" and not base.startswith("https://"):
                raise ValueError(
                    f"{self._var(url)} must be https in production: the API key goes with "
                    "every call"
                )
        return self

    @model_validator(mode="after")
    def _usable_token_key(self) -> Self:
        if self.jwt_public_key is not None and (problem := public_key_problem(self.jwt_public_key)):
            raise ValueError(
                f"{self._var('jwt_public_key')} is not an RS256 public key (PEM): {problem}"
            )
        return self

    def _var(self, field: str) -> str:
        return f"{self.model_config.get('env_prefix', '')}{field}".upper()
