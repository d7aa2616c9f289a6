from decimal import Decimal
from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from recall_shared.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="REFUND_LOGISTICS_", extra="ignore", frozen=True)

    service_name: str = "refund-logistics"
    http_port: int = 8004
    database_url: str = (
        "postgresql+asyncpg://refund_logistics:refund_logistics@127.0.0.1:5432/refund_logistics"
    )
    # External parties: "sandbox" runs the sandbox in process; "http" uses the HTTP adapters (point them at
    # `python -m refund_logistics.sandbox --port 8091` in development, at the real party in production).
    payment_provider: Literal["sandbox", "http"] = "sandbox"
    payment_base_url: str = "http://127.0.0.1:8091"
    payment_api_key: str = ""
    carrier: Literal["sandbox", "http"] = "sandbox"
    carrier_base_url: str = "http://127.0.0.1:8091"
    carrier_api_key: str = ""
    return_warehouse: str = "RLS returns centre, Recall Alerts Logistics, 1 Warehouse Way"
    case_fee: Decimal = Decimal("2.50")
    # Refund settlement: a claimed refund intent is not retried by anyone else before its lease ends; the
    # recovery loop settles intents whose lease ran out (a crash, a transient provider failure).
    refund_lease_s: float = Field(default=30.0, gt=0)
    refund_recovery_interval_s: float = Field(default=5.0, gt=0)
    proof_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1)
    # Customer tokens (proof of destruction uploads), as customer-api verifies them.
    jwt_public_key: str | None = None
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    jwt_max_lifetime_s: int = Field(
        default=24 * 3600, gt=0, description="Customer tokens that would live longer are refused"
    )
