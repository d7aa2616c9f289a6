"""Rate limits on the write routes, per credential: each API key, each customer token (bearer or
session cookie) has its own allowance; past it the answer is 429 with ``Retry-After``.

Counting uses the ``limits`` library (moving windows in process memory, expired automatically). The
limit is per process: behind N replicas a credential gets N times the allowance, which is enough to
stop one runaway client or script, the purpose here (OWASP API4). Reads are not limited: they change
nothing and are cheap. A request with no credential is not counted; it is refused by the route's
authentication anyway.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Sequence

from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter
from starlette.types import ASGIApp, Receive, Scope, Send

from recall_shared.http_errors import error_response

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def parse_limits(text: str) -> list[RateLimitItem]:
    """``"10/second;300/minute"`` (the ``limits`` notation); an empty string is no limit."""
    return list(parse_many(text)) if text.strip() else []


def credential_of(scope: Scope, cookies: Sequence[str]) -> str | None:
    """A stable, non-secret name of the request's credential: a hash of its API key, bearer token or
    session cookie (the first found, in that order), or None."""
    api_key = bearer = cookie_header = None
    for name, value in scope["headers"]:
        if name == b"x-api-key" and api_key is None:
            api_key = value
        elif name == b"authorization" and bearer is None:
            bearer = value
        elif name == b"cookie" and cookie_header is None:
            cookie_header = value.decode("latin-1")
    secret = api_key or bearer
    if secret is None and cookie_header and cookies:
        for part in cookie_header.split(";"):
            key, _, value = part.strip().partition("=")
            if key in cookies and value:
                secret = value.encode("latin-1")
                break
    if not secret:
        return None
    return hashlib.sha256(secret).hexdigest()[:32]


class WriteRateLimit:
    """Plain ASGI middleware: the write routes' allowance per credential."""

    def __init__(self, app: ASGIApp, *, limits: str, cookies: Sequence[str] = ()) -> None:
        self.app = app
        self.items = parse_limits(limits)
        self.cookies = tuple(cookies)
        self.limiter = MovingWindowRateLimiter(MemoryStorage())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.items and scope["type"] == "http" and scope["method"] in WRITE_METHODS:
            credential = credential_of(scope, self.cookies)
            if credential is not None:
                for item in self.items:
                    if not await self.limiter.hit(item, credential):
                        stats = await self.limiter.get_window_stats(item, credential)
                        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
                        response = error_response(
                            429,
                            f"too many write requests for this credential (at most {item}); "
                            f"retry after {retry_after} s",
                            headers={"Retry-After": str(retry_after)},
                        )
                        await response(scope, receive, send)
                        return
        await self.app(scope, receive, send)
