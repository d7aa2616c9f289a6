from pydantic import Field
from pydantic_settings import SettingsConfigDict

from recall_shared.http_settings import HttpServiceSettings


class Settings(HttpServiceSettings):
    model_config = SettingsConfigDict(env_prefix="PURCHASE_MATCHER_", extra="ignore", frozen=True)

    service_name: str = "purchase-matcher"
    http_port: int = 8002
    database_url: str = (
        "postgresql+asyncpg://purchase_matcher:purchase_matcher@127.0.0.1:5432/purchase_matcher"
    )
    reconcile_work_mem: str = Field(
        default="128MB",
        pattern=r"^[0-9]+(kB|MB|GB)$",
        description="PostgreSQL work_mem of a reconcile pass's reading transaction: sorting a "
        "recall's lines by customer in memory instead of on disk (a million lines need about "
        "100 MB).",
    )

    @property
    def write_rate_limit(self) -> str:
        """The limit set, else none: purchase-matcher's only POST is the checkout guard, a read
        that checkout calls for every basket (purchase_matcher.guard)."""
        return self.http_write_rate_limit or ""
