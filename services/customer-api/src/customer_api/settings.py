from pydantic import Field
from pydantic_settings import SettingsConfigDict

from recall_shared.settings import ServiceSettings


class Settings(ServiceSettings):
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
