"""The sandbox payment provider honours idempotency keys like the real one (Stripe-style)."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from refund_logistics.payments import SandboxPaymentProvider


async def test_same_key_returns_the_original_refund_and_pays_once() -> None:
    p = SandboxPaymentProvider()
    first = await p.refund(
        idempotency_key="refund:case-1:line-1",
        amount=Decimal("39.98"),
        currency="EUR",
        reference="case-1",
    )
    again = await p.refund(
        idempotency_key="refund:case-1:line-1",
        amount=Decimal("39.98"),
        currency="EUR",
        reference="case-1",
    )
    assert again == first
    assert first.provider_ref.startswith("sandbox_re_")
    assert first.amount == Decimal("39.98") and first.currency == "EUR"
    assert len(p.refunds) == 1


async def test_a_repeat_with_a_different_amount_still_answers_the_original() -> None:
    p = SandboxPaymentProvider()
    first = await p.refund(
        idempotency_key="k", amount=Decimal("10.00"), currency="EUR", reference="c"
    )
    again = await p.refund(
        idempotency_key="k", amount=Decimal("99.00"), currency="EUR", reference="c"
    )
    assert again.amount == Decimal("10.00") and again.provider_ref == first.provider_ref
    assert sum(r.amount for r in p.refunds.values()) == Decimal("10.00")


async def test_different_keys_are_different_refunds() -> None:
    p = SandboxPaymentProvider()
    a = await p.refund(idempotency_key="k1", amount=Decimal("1.00"), currency="EUR", reference="c")
    b = await p.refund(idempotency_key="k2", amount=Decimal("1.00"), currency="EUR", reference="c")
    assert a.provider_ref != b.provider_ref
    assert len(p.refunds) == 2


async def test_concurrent_retries_with_one_key_pay_once() -> None:
    p = SandboxPaymentProvider(latency_s=0.01)
    results = await asyncio.gather(
        *(
            p.refund(idempotency_key="same", amount=Decimal("5.00"), currency="EUR", reference="c")
            for _ in range(5)
        )
    )
    assert len({r.provider_ref for r in results}) == 1
    assert len(p.refunds) == 1
