from pydantic import Field
from pydantic_settings import SettingsConfigDict

from recall_shared.http_settings import HttpServiceSettings


class Settings(HttpServiceSettings):
    model_config = SettingsConfigDict(env_prefix="RECALL_INTAKE_", extra="ignore", frozen=True)

    service_name: str = "recall-intake"
    http_port: int = 8001
    database_url: str = (
        "postgresql+asyncpg://recall_intake:recall_intake@127.0.0.1:5432/recall_intake"
    )

    # The regulator watcher (recall_intake.regulator_watcher): a source without a URL is not
    # polled; no URL at all, or an interval of 0, and the watcher does not run.
    regulator_cpsc_url: str = Field(
        default="", description="e.g. https://www.saferproducts.gov/RestWebServices/Recall"
    )
    regulator_openfda_url: str = Field(
        default="", description="e.g. https://api.fda.gov/food/enforcement.json"
    )
    regulator_safety_gate_url: str = Field(default="", description="the Safety Gate search URL")
    regulator_poll_interval_s: float = Field(default=3600, ge=0)
    regulator_page_size: int = Field(default=100, ge=1, le=1000)
    regulator_max_attempts: int = Field(
        default=6, ge=1, description="Tries per page before a pass gives up (it resumes there)"
    )
    regulator_backoff_initial_s: float = Field(default=1.0, gt=0)
    regulator_backoff_max_s: float = Field(default=60.0, gt=0)
    regulator_timeout_s: float = Field(default=30.0, gt=0)

    # Seller notices (recall_intake.seller_dispatch): email through SMTP, signed webhooks.
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_timeout_s: float = Field(default=10.0, gt=0)
    seller_notice_from: str = "recalls@marketplace.example"
    seller_ack_window_s: float = Field(
        default=48 * 3600, ge=0, description="How long a seller has to acknowledge a notice"
    )
    seller_notice_settle_s: float = Field(
        default=5.0,
        ge=0,
        description="How long a new notice, or an update of one, waits before it is sent: the "
        "listings of one publication arrive on several partitions and go out together",
    )
    seller_dispatch_interval_s: float = Field(
        default=2.0, ge=0, description="How often due emails and webhooks are sent; 0: never"
    )
    webhook_timeout_s: float = Field(default=10.0, gt=0)
    webhook_allow_private_networks: bool = Field(
        default=False,
        description="Send webhooks to loopback and private addresses too (tests, a private "
        "network of receivers); otherwise such a delivery fails at once",
    )
    webhook_max_attempts: int = Field(default=8, ge=1)
    webhook_backoff_initial_s: float = Field(default=30.0, gt=0)
    webhook_backoff_max_s: float = Field(default=3600.0, gt=0)

    def regulator_urls(self) -> dict[str, str]:
        """Source name -> URL, for the sources configured."""
        urls = {
            "cpsc": self.regulator_cpsc_url,
            "openfda": self.regulator_openfda_url,
            "safety-gate": self.regulator_safety_gate_url,
        }
        return {name: url for name, url in urls.items() if url}
