"""Refunds are paid exactly once: under 1,000 concurrent identical requests, and across a crash
between any two steps (intent -> provider call -> refund row -> case transition -> outbox ->
commit).

The crash is injected with the service's fault hook (``Cases.fault``): at the chosen point it
raises, as a dying process would stop, leaving whatever was committed before. "Restart" is what a
real deployment does next: the client retries its request, and the recovery loop settles refund
intents whose lease ran out (shortened to 0.3 s in these tests), calling the provider again with the
same idempotency key.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from decimal import Decimal

import pytest

from refund_logistics.handlers import FAULT_POINTS, case_id_for
from refund_logistics.payments import PaymentError, RefundResult

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]


class SimulatedCrash(Exception):
    pass


async def _proof_case(rls, kit, lines=((1, "59.90"),)):
    rc = kit.recall()
    a = kit.alert(rc, kit.new_customer(), lines=list(lines))
    await rls.publish(kit.published(rc))
    await rls.publish(kit.raised(a))
    req = kit.remedy_request(a, "refund_on_destruction")
    await rls.publish(req)
    case_id = case_id_for(req.request_id)
    await rls.wait_for_case(case_id, lambda c: c["waiting_for"] == "proof")
    return rc, a, case_id


async def _assert_paid_once(rls, case_id: str, amount: Decimal, lines: int = 1) -> None:
    case = await rls.wait_for_case(case_id, lambda c: c["state"] == "refunded", timeout=20)
    assert Decimal(str(case["refunded_amount"])) == amount
    assert [t["transition"] for t in case["transitions"]] == ["open", "issue_refund"]
    # The provider made one refund per line (its own idempotency store), for exactly the amount due.
    made = rls.payments.refunds_for(case_id)
    assert len(made) == lines and sum(r.amount for r in made) == amount
    rows = await rls.sql("SELECT status, amount, method FROM refunds WHERE case_id = :c", c=case_id)
    assert len(rows) == lines and all(
        s == "paid" and m == "original_payment_method" for s, _, m in rows
    )
    ledger = await rls.sql(
        "SELECT kind, amount FROM seller_ledger WHERE case_id = :c ORDER BY kind", c=case_id
    )
    assert [(k, a) for k, a in ledger] == [("fee", Decimal("2.50")), ("refund_paid", amount)]
    events = await rls.wait_for_transitions(case_id, 2)
    assert [b["transition"] for _, _, b in events] == ["open", "issue_refund"]


async def test_1000_concurrent_identical_refund_requests_pay_once(rls, kit) -> None:
    _, a, case_id = await _proof_case(rls, kit)
    cases = rls.app.state.cases
    # The production lease (30 s): no lease runs out during the burst, so a second provider call
    # would be the claim failing. (With a short lease a second call may happen, with the same key:
    # still one payment.)
    cases.refund_lease_s = 30.0
    try:
        responses = await asyncio.gather(
            *(rls.submit_proof(case_id, a.customer_id) for _ in range(1000))
        )
    finally:
        cases.refund_lease_s = rls.settings.refund_lease_s
    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) <= {200, 202}, statuses
    await _assert_paid_once(rls, case_id, Decimal("59.90"))
    # One caller won the claim and called the provider; the other 999 found the refund claimed or
    # paid.
    assert len(rls.payments.calls_for(case_id)) == 1
    (proofs,) = (await rls.sql("SELECT count(*) FROM case_proofs WHERE case_id = :c", c=case_id))[0]
    assert proofs == 1


async def test_100_concurrent_item_received_webhooks_pay_once(rls, kit) -> None:
    rc = kit.recall()
    a = kit.alert(rc, kit.new_customer(), lines=[(2, "10.00"), (1, "5.00")])
    await rls.publish(kit.published(rc))
    await rls.publish(kit.raised(a))
    req = kit.remedy_request(a, "refund_with_return")
    await rls.publish(req)
    case_id = case_id_for(req.request_id)
    await rls.wait_for_case(case_id, lambda c: c["state"] == "label_issued")
    responses = await asyncio.gather(
        *(
            rls.client.post(f"/v1/cases/{case_id}/events/item-received", headers=rls.op)
            for _ in range(100)
        )
    )
    assert set(Counter(r.status_code for r in responses)) <= {200, 202}
    case = await rls.wait_for_case(case_id, lambda c: c["state"] == "refunded")
    assert Decimal(str(case["refunded_amount"])) == Decimal("25.00")
    assert [t["transition"] for t in case["transitions"]] == [
        "open",
        "issue_label",
        "receive_item",
        "issue_refund",
    ]
    assert (
        len(rls.payments.refunds_for(case_id)) == 2 and len(rls.payments.calls_for(case_id)) == 2
    )  # one per line


@pytest.mark.parametrize("point", FAULT_POINTS)
async def test_a_crash_at_each_step_recovers_without_a_second_payment(rls, kit, point: str) -> None:
    _, a, case_id = await _proof_case(rls, kit, lines=((2, "19.99"), (1, "5.50")))
    cases = rls.app.state.cases
    armed = {(point, case_id)}

    async def crash(at: str, cid: str) -> None:
        if (at, cid) in armed:
            armed.discard((at, cid))
            raise SimulatedCrash(at)

    cases.fault = crash
    cases.refund_lease_s = 0.3
    try:
        # The crash is an unexpected error to the HTTP layer: a 500 in the error shape.
        crashed = await rls.submit_proof(case_id, a.customer_id)
        assert crashed.status_code == 500 and crashed.json()["error"] == "internal_error"
        assert not armed, f"the crash point {point} was never reached"
        calls_at_crash = len(rls.payments.calls_for(case_id))
        assert calls_at_crash == (0 if point in ("after_intent", "before_provider_call") else 2)
        # "Restart": the customer's app retries the upload; the recovery loop settles what the crash
        # left.
        retry = await rls.submit_proof(case_id, a.customer_id)
        assert retry.status_code in (200, 202), retry.text
        await _assert_paid_once(rls, case_id, Decimal("45.48"), lines=2)
    finally:
        cases.fault = _no_fault
        cases.refund_lease_s = rls.settings.refund_lease_s


async def _no_fault(point: str, case_id: str) -> None:
    return None


async def test_a_transient_provider_failure_is_retried_by_the_recovery_loop_with_the_same_key(
    rls, kit
) -> None:
    _, a, case_id = await _proof_case(rls, kit)
    real = rls.payments
    failed: list[str] = []

    class FlakyOnce:
        """The provider charged, then the answer was lost (a timeout) on the first call of this
        case."""

        async def refund(self, **kw: object) -> RefundResult:
            result = await real.refund(**kw)
            if kw["reference"] == case_id and not failed:
                failed.append(str(kw["idempotency_key"]))
                raise PaymentError("read timeout", transient=True)
            return result

    cases = rls.app.state.cases
    cases.payments = FlakyOnce()
    cases.refund_lease_s = 0.3
    try:
        r = await rls.submit_proof(case_id, a.customer_id)
        assert r.status_code == 202 and r.json()["waiting_for"] == "payment"
        await _assert_paid_once(rls, case_id, Decimal("59.90"))
        assert len(real.calls_for(case_id)) == 2 and {c[0] for c in real.calls_for(case_id)} == set(
            failed
        )
    finally:
        cases.payments = real
        cases.refund_lease_s = rls.settings.refund_lease_s


async def test_a_provider_asking_to_retry_later_is_not_called_again_before_then(rls, kit) -> None:
    """A 429 with ``Retry-After: 2`` (longer than the 0.3 s lease): the recovery loop, which runs
    every 0.2 s here, calls again only after the 2 s. Old behaviour caught: it called again as
    soon as the lease ran out."""
    _, a, case_id = await _proof_case(rls, kit)
    real = rls.payments
    calls: list[float] = []

    class RateLimitedOnce:
        async def refund(self, **kw: object) -> RefundResult:
            if kw["reference"] == case_id:
                calls.append(asyncio.get_running_loop().time())
                if len(calls) == 1:
                    raise PaymentError(
                        "payment provider answered 429: rate limited",
                        transient=True,
                        retry_after_s=2.0,
                    )
            return await real.refund(**kw)

    cases = rls.app.state.cases
    cases.payments = RateLimitedOnce()
    cases.refund_lease_s = 0.3
    try:
        r = await rls.submit_proof(case_id, a.customer_id)
        assert r.status_code == 202 and r.json()["waiting_for"] == "payment"
        await _assert_paid_once(rls, case_id, Decimal("59.90"))
        assert len(calls) == 2, calls
        assert calls[1] - calls[0] >= 1.9, f"called again after {calls[1] - calls[0]:.2f} s"
    finally:
        cases.payments = real
        cases.refund_lease_s = rls.settings.refund_lease_s


async def test_two_cases_for_one_alert_never_refund_a_line_twice(rls, kit) -> None:
    rc = kit.recall()
    a = kit.alert(rc, kit.new_customer(), lines=[(1, "30.00")])
    await rls.publish(kit.published(rc))
    await rls.publish(kit.raised(a))
    first, second = kit.remedy_request(a), kit.remedy_request(a)
    await rls.publish(first)
    await rls.publish(second)
    ids = [case_id_for(first.request_id), case_id_for(second.request_id)]
    for cid in ids:
        await rls.wait_for_case(cid, lambda c: c["waiting_for"] == "proof")
    await asyncio.gather(*(rls.submit_proof(cid, a.customer_id) for cid in ids for _ in range(20)))
    cases = [
        await rls.wait_for_case(cid, lambda c: c["state"] in ("refunded", "rejected"))
        for cid in ids
    ]
    assert sorted(c["state"] for c in cases) == ["refunded", "rejected"]
    rejected = next(c for c in cases if c["state"] == "rejected")
    assert "already refunded" in rejected["reason"]
    (total,) = (
        await rls.sql(
            "SELECT sum(amount) FROM refunds WHERE line_id = :l AND status = 'paid'",
            l=a.lines[0].line_id,
        )
    )[0]
    assert total == Decimal("30.00")
