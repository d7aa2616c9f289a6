from pydantic import Field
from pydantic_settings import SettingsConfigDict

from recall_shared.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="NOTIFIER_", extra="ignore", frozen=True)

    service_name: str = "notifier"
    http_port: int = 8003
    database_url: str = "postgresql+asyncpg://notifier:notifier@127.0.0.1:5432/notifier"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    smtp_timeout_s: float = 10.0
    smtp_concurrency: int = Field(default=4, ge=1, description="Messages in flight to the relay at once")
    mail_from: str = "Recall Alerts <recalls@recall-alerts.invalid>"
    customer_portal_url: str = "http://127.0.0.1:8005"
    send_max_attempts: int = Field(default=6, ge=1)
    send_backoff_initial_s: float = Field(default=5.0, gt=0)
    send_lease_s: float = Field(default=300.0, gt=0, description="A claimed notice not recorded by then is retried")
    sender_poll_s: float = Field(default=2.0, gt=0)
