"""The payment provider port, its HTTP adapter and a local sandbox.

Every refund carries an idempotency key; the provider answers a repeated key with the original
refund instead of paying again (Stripe-style), so our retries never pay twice. Every refund goes to
the original payment method of the order (``method: original_payment_method``), never a gift card.
The HTTP contract is in RLS.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from refund_logistics.http_retry import IdempotentHttpParty, PartyError
from refund_logistics.sandbox import (
    ORIGINAL_PAYMENT_METHOD,
    SandboxBehaviour,
    SandboxCore,
    SandboxRejected,
    SandboxTransientError,
)


@dataclass(frozen=True)
class RefundResult:
    provider_ref: str
    amount: Decimal
    currency: str
    method: str = ORIGINAL_PAYMENT_METHOD


class PaymentError(Exception):
    def __init__(
        self, message: str, *, transient: bool, retry_after_s: float | None = None
    ) -> None:
        super().__init__(message)
        self.transient = transient
        self.retry_after_s = retry_after_s  # the provider's Retry-After, when it said


class PaymentProvider(Protocol):
    async def refund(
        self,
        *,
        idempotency_key: str,
        amount: Decimal,
        currency: str,
        reference: str,
        order_id: str | None = None,
        line_id: str | None = None,
    ) -> RefundResult: ...


def refund_body(
    amount: Decimal, currency: str, reference: str, order_id: str | None, line_id: str | None
) -> dict:
    return {
        "amount": str(amount),
        "currency": currency,
        "method": ORIGINAL_PAYMENT_METHOD,
        "order_id": order_id,
        "order_line_id": line_id,
        "reference": reference,
    }


class HttpPaymentProvider(IdempotentHttpParty):
    """``POST {base}/v1/refunds`` with ``Idempotency-Key`` and ``Authorization: Bearer``; body
    {amount, currency, method, order_id, order_line_id, reference}; answer 201 (200 on a replay)
    {id, amount, currency, method, status}. Timeouts, 408/409/425/429 and 5xx are transient and
    retried here with the same key; other 4xx are permanent."""

    party = "payment provider"

    async def refund(
        self,
        *,
        idempotency_key: str,
        amount: Decimal,
        currency: str,
        reference: str,
        order_id: str | None = None,
        line_id: str | None = None,
    ) -> RefundResult:
        try:
            body = await self.post(
                "/v1/refunds",
                refund_body(amount, currency, reference, order_id, line_id),
                idempotency_key=idempotency_key,
            )
        except PartyError as exc:
            raise PaymentError(
                str(exc), transient=exc.transient, retry_after_s=exc.retry_after_s
            ) from exc
        if body.get("method", ORIGINAL_PAYMENT_METHOD) != ORIGINAL_PAYMENT_METHOD:
            raise PaymentError(
                f"provider refunded to {body.get('method')!r}, not the original method",
                transient=False,
            )
        return RefundResult(
            provider_ref=str(body["id"]),
            amount=Decimal(str(body["amount"])),
            currency=body["currency"],
            method=body.get("method", ORIGINAL_PAYMENT_METHOD),
        )


class SandboxPaymentProvider:
    """The sandbox payment provider in process (development default and tests): the same behaviour
    as ``python -m refund_logistics.sandbox`` without a socket. Clearly not a real payment: refs
    start with ``sandbox_re_``. A transient failure surfaces as ``PaymentError(transient=True)``, as
    from the adapter."""

    def __init__(self, latency_s: float = 0.0, behaviour: SandboxBehaviour | None = None) -> None:
        self.core = SandboxCore(behaviour or SandboxBehaviour(latency_s=latency_s))
        self.refunds: dict[
            str, RefundResult
        ] = {}  # idempotency key -> the refund made (one per key)

    async def refund(
        self,
        *,
        idempotency_key: str,
        amount: Decimal,
        currency: str,
        reference: str,
        order_id: str | None = None,
        line_id: str | None = None,
    ) -> RefundResult:
        body = refund_body(amount, currency, reference, order_id, line_id)
        try:
            answer, _ = await self.core.execute(
                "refund", idempotency_key, lambda: self.core.new_refund(body)
            )
        except SandboxTransientError as exc:
            raise PaymentError(str(exc), transient=True) from exc
        except SandboxRejected as exc:
            raise PaymentError(str(exc), transient=False) from exc
        result = RefundResult(
            answer["id"], Decimal(answer["amount"]), answer["currency"], answer["method"]
        )
        self.refunds.setdefault(idempotency_key, result)
        return result
