from pydantic_settings import SettingsConfigDict

from recall_shared.http_settings import HttpServiceSettings


class Settings(HttpServiceSettings):
    model_config = SettingsConfigDict(env_prefix="RECALL_INTAKE_", extra="ignore", frozen=True)

    service_name: str = "recall-intake"
    http_port: int = 8001
    database_url: str = (
        "postgresql+asyncpg://recall_intake:recall_intake@127.0.0.1:5432/recall_intake"
    )
