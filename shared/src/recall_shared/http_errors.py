"""The one error body every service answers with, ``{error, message, detail}``, and its status
codes."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field
from starlette.responses import JSONResponse

ERROR_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    429: "too_many_requests",
    500: "internal_error",
    503: "unavailable",
}


class ErrorBody(BaseModel):
    """Every 4xx and 5xx answer of every service."""

    error: str = Field(description="A stable, machine-readable code, e.g. validation_failed")
    message: str = Field(description="What went wrong, for a person; names the field at fault")
    detail: Any = Field(
        default=None,
        description="More about the error: for validation errors a list of "
        "{loc, msg, type}; otherwise a string or an object",
    )


def error_response(
    status: int,
    message: str,
    *,
    error: str | None = None,
    detail: Any = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {
        "error": error or ERROR_CODES.get(status, "error"),
        "message": message,
        "detail": message if detail is None else detail,
    }
    return JSONResponse(status_code=status, content=body, headers=headers)
