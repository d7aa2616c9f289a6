"""The payment provider port, its HTTP adapter and a local sandbox.

Every refund carries an idempotency key; the provider answers a repeated key with the original
refund instead of paying again (Stripe-style), so our retries never pay twice.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

import httpx


@dataclass(frozen=True)
class RefundResult:
    provider_ref: str
    amount: Decimal
    currency: str


class PaymentError(Exception):
    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


class PaymentProvider(Protocol):
    async def refund(self, *, idempotency_key: str, amount: Decimal, currency: str, reference: str) -> RefundResult: ...


class HttpPaymentProvider:
    """``POST {base}/v1/refunds`` with ``Idempotency-Key``; body {amount, currency, reference};
    answer 200/201 {id, amount, currency}. 5xx and timeouts are transient; 4xx are not."""

    def __init__(self, base_url: str, api_key: str, client: httpx.AsyncClient | None = None) -> None:
        self.client = client or httpx.AsyncClient(base_url=base_url, timeout=10.0, headers={"Authorization": f"Bearer {api_key}"})

    async def refund(self, *, idempotency_key: str, amount: Decimal, currency: str, reference: str) -> RefundResult:
        try:
            r = await self.client.post(
                "/v1/refunds",
                json={"amount": str(amount), "currency": currency, "reference": reference},
                headers={"Idempotency-Key": idempotency_key},
            )
        except httpx.TransportError as exc:
            raise PaymentError(f"payment provider unreachable: {exc}", transient=True) from exc
        if r.status_code >= 500:
            raise PaymentError(f"payment provider error {r.status_code}", transient=True)
        if r.status_code >= 400:
            raise PaymentError(f"payment refused {r.status_code}: {r.text[:500]}", transient=False)
        body = r.json()
        return RefundResult(provider_ref=str(body["id"]), amount=Decimal(str(body["amount"])), currency=body["currency"])


class SandboxPaymentProvider:
    """A local stand-in for the payment provider in development and tests, honouring idempotency keys
    (within the process). Clearly not a real payment: refs start with ``sandbox_re_``."""

    def __init__(self, latency_s: float = 0.0) -> None:
        self.latency_s = latency_s
        self.refunds: dict[str, RefundResult] = {}

    async def refund(self, *, idempotency_key: str, amount: Decimal, currency: str, reference: str) -> RefundResult:
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        if idempotency_key not in self.refunds:
            self.refunds[idempotency_key] = RefundResult(f"sandbox_re_{uuid.uuid4().hex[:16]}", amount, currency)
        return self.refunds[idempotency_key]
