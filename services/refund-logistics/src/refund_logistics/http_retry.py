"""One POST with an idempotency key, retried on transient failures with the SAME key (Stripe-style).

Waits between attempts grow exponentially with jitter (so the retries of many cases do not hit a
recovering party at the same instant) and honour the party's ``Retry-After``; a party asking for
longer than a request may wait is not waited for: the failure is raised as transient, carrying the
wait, for the case to be retried later.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

TRANSIENT_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class PartyError(Exception):
    def __init__(
        self,
        message: str,
        *,
        transient: bool,
        status: int | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.transient = transient
        self.status = status
        self.retry_after_s = retry_after_s  # what the party asked for, when it said


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """A ``Retry-After`` header in seconds: delta-seconds or an HTTP-date; None when absent or
    unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP-date is GMT; a zoneless one is read as such
        when = when.replace(tzinfo=UTC)
    return max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 4
    backoff_s: float = 0.05
    max_backoff_s: float = 2.0
    max_retry_after_s: float = 30.0

    def delay(self, attempt: int, retry_after_s: float | None, rand: float) -> float | None:
        """Seconds to wait after failed attempt ``attempt`` (1-based): the exponential backoff with
        jitter (``rand`` in [0, 1) takes half to all of it), or the party's Retry-After when that is
        longer; None to stop now, because the party asks for longer than ``max_retry_after_s``."""
        if retry_after_s is not None and retry_after_s > self.max_retry_after_s:
            return None
        backoff = min(self.backoff_s * 2 ** (attempt - 1), self.max_backoff_s)
        return max(backoff * (0.5 + rand / 2), retry_after_s or 0.0)


async def post_idempotent(
    client: httpx.AsyncClient,
    path: str,
    body: dict[str, Any],
    *,
    idempotency_key: str,
    party: str,
    policy: RetryPolicy = RetryPolicy(),
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    rand: Callable[[], float] = random.random,
) -> dict[str, Any]:
    """The answer of a 200/201; a transient failure (timeout, connection error, 408/409/425/429/5xx)
    is retried with the same key up to ``policy.max_attempts``, then raised as transient; other 4xx
    are permanent."""
    for attempt in range(1, policy.max_attempts + 1):
        retry_after = None
        try:
            r = await client.post(path, json=body, headers={"Idempotency-Key": idempotency_key})
        except httpx.TransportError as exc:  # timeouts too: the effect may or may not have happened
            last = PartyError(f"{party} unreachable: {type(exc).__name__}: {exc}", transient=True)
        else:
            if r.status_code in (200, 201):
                return r.json()
            message = f"{party} answered {r.status_code}: {r.text[:500]}"
            if r.status_code not in TRANSIENT_STATUS:
                raise PartyError(message, transient=False, status=r.status_code)
            retry_after = retry_after_seconds(r.headers.get("retry-after"))
            last = PartyError(
                message, transient=True, status=r.status_code, retry_after_s=retry_after
            )
        if attempt == policy.max_attempts:
            break
        wait = policy.delay(attempt, retry_after, rand())
        if wait is None:
            break
        await sleep(wait)
    raise last


class IdempotentHttpParty:
    """A third party's HTTP API reached with a bearer key and idempotent, retried POSTs (payments,
    carrier)."""

    party = "third party"

    def __init__(
        self,
        base_url: str,
        api_key: str,
        client: httpx.AsyncClient | None = None,
        *,
        max_attempts: int = 4,
        backoff_s: float = 0.05,
        timeout_s: float = 10.0,
        max_retry_after_s: float = 30.0,
    ) -> None:
        if client is None and (not api_key or api_key != api_key.strip()):
            # "Bearer " alone is refused by httpx on every call, which looks transient forever.
            raise ValueError(f"the {self.party} needs an API key without surrounding whitespace")
        self.client = client or httpx.AsyncClient(
            base_url=base_url, timeout=timeout_s, headers={"Authorization": f"Bearer {api_key}"}
        )
        self.policy = RetryPolicy(
            max_attempts=max_attempts, backoff_s=backoff_s, max_retry_after_s=max_retry_after_s
        )

    async def post(
        self, path: str, body: dict[str, Any], *, idempotency_key: str
    ) -> dict[str, Any]:
        return await post_idempotent(
            self.client,
            path,
            body,
            idempotency_key=idempotency_key,
            party=self.party,
            policy=self.policy,
        )

    async def aclose(self) -> None:
        await self.client.aclose()
