"""Retries to the payment provider and the carrier: jittered backoff, the party's Retry-After
honoured, and no wait longer than a request may take."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email.utils import format_datetime

import httpx
import pytest

from refund_logistics.http_retry import (
    IdempotentHttpParty,
    PartyError,
    RetryPolicy,
    post_idempotent,
    retry_after_seconds,
)
from refund_logistics.payments import HttpPaymentProvider, PaymentError


def test_backoff_grows_exponentially_with_jitter_between_half_and_all_of_it() -> None:
    policy = RetryPolicy(backoff_s=0.1, max_backoff_s=1.0)
    assert [policy.delay(a, None, 0.0) for a in (1, 2, 3, 4, 5)] == [0.05, 0.1, 0.2, 0.4, 0.5]
    assert [policy.delay(a, None, 0.999999) for a in (1, 2, 3)] == pytest.approx([0.1, 0.2, 0.4])
    assert policy.delay(2, None, 0.5) == pytest.approx(0.15)


def test_retry_after_is_honoured_when_longer_and_too_long_means_stop() -> None:
    policy = RetryPolicy(backoff_s=0.1, max_retry_after_s=30.0)
    assert policy.delay(1, 3.0, 0.5) == 3.0
    assert policy.delay(1, 0.01, 0.0) == 0.05  # shorter than our backoff: the backoff holds
    assert policy.delay(1, 31.0, 0.5) is None


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds(format_datetime(now + timedelta(seconds=90), usegmt=True), now) == 90
    assert retry_after_seconds(format_datetime(now - timedelta(seconds=5), usegmt=True), now) == 0
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds("-3") is None


def _client(answers: list[httpx.Response]) -> tuple[httpx.AsyncClient, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answers[min(len(seen), len(answers)) - 1]

    return httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="http://p"), seen


async def test_the_wait_between_attempts_is_what_the_party_asked_for() -> None:
    client, seen = _client(
        [
            httpx.Response(429, headers={"Retry-After": "2"}, text="slow down"),
            httpx.Response(503, text="busy"),
            httpx.Response(201, json={"id": "re_1"}),
        ]
    )
    waits: list[float] = []

    async def sleep(s: float) -> None:
        waits.append(s)

    body = await post_idempotent(
        client,
        "/v1/refunds",
        {"amount": "1.00"},
        idempotency_key="k-1",
        party="payment provider",
        policy=RetryPolicy(backoff_s=0.1),
        sleep=sleep,
        rand=lambda: 0.0,
    )
    assert body == {"id": "re_1"}
    assert waits == [2.0, 0.1]  # Retry-After, then the (jittered) backoff of the second attempt
    assert {r.headers["Idempotency-Key"] for r in seen} == {"k-1"} and len(seen) == 3


async def test_a_party_asking_for_a_long_pause_is_not_waited_for() -> None:
    client, seen = _client([httpx.Response(503, headers={"Retry-After": "600"}, text="maint")])
    waits: list[float] = []

    async def sleep(s: float) -> None:
        waits.append(s)

    with pytest.raises(PartyError) as err:
        await post_idempotent(
            client, "/v1/labels", {}, idempotency_key="k", party="carrier", sleep=sleep
        )
    assert err.value.transient and err.value.retry_after_s == 600 and err.value.status == 503
    assert waits == [] and len(seen) == 1


async def test_jitter_spreads_the_waits() -> None:
    client, _ = _client([httpx.Response(502, text="bad gateway")])
    waits: list[float] = []

    async def sleep(s: float) -> None:
        waits.append(s)

    for _ in range(5):
        with pytest.raises(PartyError):
            await post_idempotent(
                client,
                "/v1/refunds",
                {},
                idempotency_key="k",
                party="payment provider",
                policy=RetryPolicy(max_attempts=2, backoff_s=1.0),
                sleep=sleep,
            )
    assert len(waits) == 5 and all(0.5 <= w <= 1.0 for w in waits)
    assert len(set(waits)) > 1


@pytest.mark.parametrize("key", ["", " sk_live", "sk_live\n"])
def test_an_adapter_refuses_to_start_without_a_usable_key(key: str) -> None:
    with pytest.raises(ValueError, match="needs an API key"):
        IdempotentHttpParty("https://pay.example", key)


async def test_the_payment_adapter_passes_on_how_long_the_provider_asked_to_wait() -> None:
    """The recovery loop holds the refund until then (refund_steps), so it must reach it."""
    client, _ = _client([httpx.Response(429, headers={"Retry-After": "600"}, text="slow down")])
    provider = HttpPaymentProvider("http://p", "sk_test", client=client)
    with pytest.raises(PaymentError) as err:
        await provider.refund(
            idempotency_key="k", amount=Decimal("1.00"), currency="EUR", reference="case-1"
        )
    assert err.value.transient and err.value.retry_after_s == 600
