from pydantic_settings import SettingsConfigDict

from recall_shared.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="PURCHASE_MATCHER_", extra="ignore", frozen=True)

    service_name: str = "purchase-matcher"
    http_port: int = 8002
    database_url: str = "postgresql+asyncpg://purchase_matcher:purchase_matcher@127.0.0.1:5432/purchase_matcher"
