"""The HTTP limits every service takes from its settings (``<PREFIX>HTTP_MAX_BODY_BYTES`` ...)."""

from __future__ import annotations

from pydantic import Field, field_validator

from recall_shared.rate_limit import parse_limits
from recall_shared.settings import ServiceSettings

DEFAULT_WRITE_RATE_LIMIT = "10/second;300/minute"


class HttpServiceSettings(ServiceSettings):
    http_max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="Largest request body (JSON or form) in bytes; a larger one is refused (413)",
    )
    http_write_rate_limit: str | None = Field(
        default=None,
        description="Write requests (POST, PUT, PATCH, DELETE) allowed per API key or customer "
        'token, in the notation "10/second;300/minute"; "" turns the limit off. Unset: '
        f"{DEFAULT_WRITE_RATE_LIMIT}, and off when RECALL_ALERTS_ENV=test",
    )

    @field_validator("http_write_rate_limit")
    @classmethod
    def _parses(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                parse_limits(value)
            except ValueError as exc:
                raise ValueError(
                    f'not a rate limit such as "10/second;300/minute": {exc}'
                ) from None
        return value

    @property
    def write_rate_limit(self) -> str:
        """The limit in force: the one set, else the default (none in tests)."""
        if self.http_write_rate_limit is not None:
            return self.http_write_rate_limit
        return "" if self.environment == "test" else DEFAULT_WRITE_RATE_LIMIT
