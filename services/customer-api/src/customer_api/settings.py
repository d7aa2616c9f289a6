from typing import Self

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from recall_shared.auth import public_key_problem
from recall_shared.http_settings import HttpServiceSettings


class Settings(HttpServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CUSTOMER_API_", extra="ignore", frozen=True)

    service_name: str = "customer-api"
    http_port: int = 8005
    database_url: str = "postgresql+asyncpg://customer_api:customer_api@127.0.0.1:5432/customer_api"
    jwt_public_key: str | None = None  # RS256 PEM; when set, HS256 with jwt_secret is not accepted
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    jwt_max_lifetime_s: int = Field(
        default=24 * 3600, gt=0, description="Customer tokens that would live longer are refused"
    )
    banner_max_age_s: int = 15
    jwt_cache_size: int = (
        10_000  # verified tokens remembered (exp still checked on every use); 0: verify every time
    )
    # The recalls page's proof of destruction upload, forwarded to refund-logistics' API with the
    # customer's own token (docs/decisions/0009-proof-upload-through-customer-api.md).
    refund_logistics_url: str = "http://127.0.0.1:8004"
    refund_logistics_timeout_s: float = Field(default=30.0, gt=0)
    proof_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1)
    # Recording an alert view (views.py) is given up after this long, so a stuck database delays
    # the alert page by this much at most; the view is recorded on the customer's next one.
    view_write_timeout_ms: int = Field(default=500, gt=0, le=10_000)

    @model_validator(mode="after")
    def _usable_token_key(self) -> Self:
        if self.jwt_public_key is not None and (problem := public_key_problem(self.jwt_public_key)):
            var = f"{self.model_config.get('env_prefix', '')}jwt_public_key".upper()
            raise ValueError(f"{var} is not an RS256 public key (PEM): {problem}")
        return self
