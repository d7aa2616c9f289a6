"""One POST with an idempotency key, retried on transient failures with the SAME key (Stripe-style)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

TRANSIENT_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class PartyError(Exception):
    def __init__(self, message: str, *, transient: bool, status: int | None = None) -> None:
        super().__init__(message)
        self.transient = transient
        self.status = status


async def post_idempotent(
    client: httpx.AsyncClient,
    path: str,
    body: dict[str, Any],
    *,
    idempotency_key: str,
    party: str,
    max_attempts: int = 4,
    backoff_s: float = 0.05,
) -> dict[str, Any]:
    """The answer of a 200/201; a transient failure (timeout, connection error, 408/409/425/429/5xx) is
    retried with the same key up to ``max_attempts``, then raised as transient; other 4xx are permanent."""
    delay = backoff_s
    last: PartyError | None = None
    for attempt in range(1, max_attempts + 1):
        try:
            r = await client.post(path, json=body, headers={"Idempotency-Key": idempotency_key})
        except (
            httpx.TransportError
        ) as exc:  # includes timeouts: the effect may or may not have happened
            last = PartyError(f"{party} unreachable: {type(exc).__name__}: {exc}", transient=True)
        else:
            if r.status_code in (200, 201):
                return r.json()
            message = f"{party} answered {r.status_code}: {r.text[:500]}"
            if r.status_code not in TRANSIENT_STATUS:
                raise PartyError(message, transient=False, status=r.status_code)
            last = PartyError(message, transient=True, status=r.status_code)
        if attempt < max_attempts:
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
    assert last is not None
    raise last


class IdempotentHttpParty:
    """A third party's HTTP API reached with a bearer key and idempotent, retried POSTs (payments, carrier)."""

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
    ) -> None:
        self.client = client or httpx.AsyncClient(
            base_url=base_url, timeout=timeout_s, headers={"Authorization": f"Bearer {api_key}"}
        )
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s

    async def post(
        self, path: str, body: dict[str, Any], *, idempotency_key: str
    ) -> dict[str, Any]:
        return await post_idempotent(
            self.client,
            path,
            body,
            idempotency_key=idempotency_key,
            party=self.party,
            max_attempts=self.max_attempts,
            backoff_s=self.backoff_s,
        )

    async def aclose(self) -> None:
        await self.client.aclose()
