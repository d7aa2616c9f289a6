from typing import Self

from pydantic import Field, model_validator
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
    guard_index_refresh_s: float = Field(
        default=0.5,
        gt=0,
        le=60,
        description="How often the checkout guard rereads the active recalls and operator keys "
        "into its index (purchase_matcher.guard_index): the usual delay between a recall or key "
        "change applied here and the guard's answers",
    )
    guard_index_max_age_s: float = Field(
        default=2.0,
        gt=0,
        le=300,
        description="The oldest index the guard answers from: past it (refreshes failing or "
        "slow) each check reads the tables instead",
    )

    @model_validator(mode="after")
    def _index_can_be_current(self) -> Self:
        if self.guard_index_max_age_s < self.guard_index_refresh_s:
            raise ValueError(
                "guard_index_max_age_s must be at least guard_index_refresh_s (else the guard's "
                "index is too old to answer from before each refresh)"
            )
        return self

    @property
    def write_rate_limit(self) -> str:
        """The limit set, else none: purchase-matcher's only POST is the checkout guard, a read
        that checkout calls for every basket (purchase_matcher.guard)."""
        return self.http_write_rate_limit or ""
