from decimal import Decimal
from typing import Literal

from pydantic_settings import SettingsConfigDict

from recall_shared.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="REFUND_LOGISTICS_", extra="ignore", frozen=True)

    service_name: str = "refund-logistics"
    http_port: int = 8004
    database_url: str = "postgresql+asyncpg://refund_logistics:refund_logistics@127.0.0.1:5432/refund_logistics"
    payment_provider: Literal["sandbox", "http"] = "sandbox"
    payment_base_url: str = "http://127.0.0.1:8091"
    payment_api_key: str = ""
    case_fee: Decimal = Decimal("2.50")
