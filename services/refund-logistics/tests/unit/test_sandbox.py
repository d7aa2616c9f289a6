"""The sandbox behaves like the real parties: its own idempotency, seedable transient failures, the
original payment method only; and the HTTP adapters map its answers (in process, over ASGI)."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest

from refund_logistics.carrier import CarrierError, HttpCarrier
from refund_logistics.payments import HttpPaymentProvider, PaymentError, SandboxPaymentProvider
from refund_logistics.sandbox import (
    SandboxBehaviour,
    SandboxCore,
    SandboxTransientError,
    create_sandbox_app,
)


async def _outcomes(seed: int) -> list[str]:
    core = SandboxCore(SandboxBehaviour(failure_rate=0.3, seed=seed))
    out = []
    for i in range(40):
        try:
            await core.execute("refund", f"k{i}", lambda: {"id": "x", "amount": "1.00"})
            out.append("ok")
        except SandboxTransientError as exc:
            out.append("before" if "before" in str(exc) else "after")
    return out


async def test_transient_failures_are_seedable_and_some_come_after_the_effect() -> None:
    first, again = await _outcomes(7), await _outcomes(7)
    assert first == again
    assert {"ok", "before", "after"} <= set(first)
    assert first != await _outcomes(8)


async def test_a_failure_after_the_effect_is_replayed_not_repeated() -> None:
    p = SandboxPaymentProvider(behaviour=SandboxBehaviour(fail_first_attempts=1))
    with pytest.raises(PaymentError) as err:
        await p.refund(idempotency_key="k", amount=Decimal("3.00"), currency="EUR", reference="c")
    assert err.value.transient
    result = await p.refund(
        idempotency_key="k", amount=Decimal("3.00"), currency="EUR", reference="c"
    )
    assert (
        result.amount == Decimal("3.00")
        and p.core.effects["refund"] == 1
        and p.core.attempts["refund:k"] == 2
    )


def _asgi(app, **kw) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://sandbox", **kw
    )


async def test_the_adapter_sends_the_original_payment_method_and_the_key() -> None:
    app = create_sandbox_app(api_key="sk_test")
    provider = HttpPaymentProvider(
        "", "", client=_asgi(app, headers={"Authorization": "Bearer sk_test"})
    )
    result = await provider.refund(
        idempotency_key="refund:c:l",
        amount=Decimal("19.99"),
        currency="EUR",
        reference="c",
        order_id="o-1",
        line_id="l",
    )
    assert result.method == "original_payment_method" and result.provider_ref.startswith(
        "sandbox_re_"
    )
    stored = app.state.core.store["refund:refund:c:l"]
    assert (
        stored["order_id"] == "o-1"
        and stored["order_line_id"] == "l"
        and stored["method"] == "original_payment_method"
    )


async def test_the_sandbox_refuses_gift_cards_missing_keys_and_bad_credentials() -> None:
    app = create_sandbox_app(api_key="sk_test")
    async with _asgi(app, headers={"Authorization": "Bearer sk_test"}) as c:
        gift = await c.post(
            "/v1/refunds",
            json={"amount": "5.00", "currency": "EUR", "method": "gift_card"},
            headers={"Idempotency-Key": "g"},
        )
        assert gift.status_code == 422 and gift.json()["error"]["code"] == "method_not_allowed"
        nokey = await c.post("/v1/refunds", json={"amount": "5.00", "currency": "EUR"})
        assert nokey.status_code == 400
    wrong = HttpPaymentProvider("", "", client=_asgi(app, headers={"Authorization": "Bearer nope"}))
    with pytest.raises(PaymentError) as err:
        await wrong.refund(
            idempotency_key="k", amount=Decimal("1.00"), currency="EUR", reference="c"
        )
    assert not err.value.transient and "401" in str(err.value)
    assert app.state.core.effects["refund"] == 0


async def test_the_adapter_gives_up_after_its_attempts_as_transient() -> None:
    app = create_sandbox_app(SandboxBehaviour(failure_rate=1.0, failure_after_effect=0.0))
    carrier = HttpCarrier("", "", client=_asgi(app), max_attempts=3, backoff_s=0.001)
    with pytest.raises(CarrierError) as err:
        await carrier.issue_label(
            idempotency_key="label:c",
            reference="c",
            customer_id="cu",
            units=1,
            return_to="w",
            currency="EUR",
        )
    assert (
        err.value.transient
        and app.state.core.attempts["label:label:c"] == 3
        and app.state.core.effects["label"] == 0
    )
