"""Nobody silent: customers without an address, or whose notice bounced or failed for good, sit in
the unreachable queue (operator API and gauge) until something reaches them."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from notifier.webhook import mailgun_signature
from recall_shared.testing import eventually

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

KEY = "key-" + "5" * 32


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def svc2(start_notifier: Any) -> AsyncIterator[Any]:
    async with start_notifier(mailgun_webhook_signing_key=KEY, unreachable_refresh_s=0.2) as n:
        yield n


def bounce(notice_id: str) -> dict:
    ts, token = str(int(time.time())), uuid.uuid4().hex
    return {
        "signature": {
            "timestamp": ts,
            "token": token,
            "signature": mailgun_signature(KEY, ts, token),
        },
        "event-data": {
            "event": "failed",
            "severity": "permanent",
            "message": {"headers": {"message-id": f"{notice_id}@recall-alerts.notices"}},
            "delivery-status": {"code": 550, "message": "5.1.1 mailbox unknown"},
        },
    }


async def queue(svc2: Any, **params: object) -> dict:
    r = await svc2.client.get("/v1/unreachable", params=params)
    assert r.status_code == 200, r.text
    return r.json()


async def gauge_is(svc2: Any, **expected: float) -> bool:
    """notifier_unreachable_customers{reason} on /metrics is ``expected``."""
    text = (await svc2.client.get("/metrics")).text
    pattern = r'^notifier_unreachable_customers\{reason="(\w+)"\} (\S+)$'
    got = {m.group(1): float(m.group(2)) for m in re.finditer(pattern, text, re.M)}
    return got == expected


async def test_customers_no_notice_can_reach_are_queued_until_one_does(svc2: Any, kit: Any) -> None:
    silent, bounced, fine = kit.new_customer(), kit.new_customer(), kit.new_customer()
    # silent: customers.v1 knows no address; bounced: the address does not work; fine: delivered.
    await svc2.publish(kit.customer(silent))
    await svc2.publish(kit.customer(bounced, email_=kit.new_email()))
    await svc2.publish(kit.customer(fine, email_=kit.new_email()))
    alerts = {c: kit.alert(c) for c in (silent, bounced, fine)}
    for a in alerts.values():
        await svc2.publish(kit.raised(a))
    await svc2.wait_for_notices(
        alerts[silent].alert_id, lambda ns: ns and ns[0]["status"] == "waiting_contact"
    )
    (sent,) = await svc2.wait_for_notices(
        alerts[bounced].alert_id, lambda ns: ns and ns[0]["status"] == "sent"
    )
    await svc2.wait_for_notices(alerts[fine].alert_id, lambda ns: ns and ns[0]["status"] == "sent")
    r = await svc2.client.post("/v1/webhooks/mailgun", json=bounce(sent["notice_id"]))
    assert r.json() == {"recorded": True}

    page = await queue(svc2)
    by_customer = {i["customer_id"]: i for i in page["items"]}
    assert set(by_customer) == {silent, bounced}
    assert by_customer[silent]["reason"] == "no_contact"
    assert by_customer[silent]["alert_ids"] == [alerts[silent].alert_id]
    assert by_customer[bounced]["reason"] == "all_channels_failed"
    assert "mailbox unknown" in by_customer[bounced]["last_error"]
    assert page["counts"] == {"no_contact": 1, "all_channels_failed": 1}
    only = await queue(svc2, reason="no_contact")
    assert [i["customer_id"] for i in only["items"]] == [silent]
    first = await queue(svc2, limit=1)
    rest = await queue(svc2, limit=1, cursor=first["next_cursor"])
    assert [i["customer_id"] for i in first["items"] + rest["items"]] == [
        i["customer_id"] for i in page["items"]
    ]
    assert rest["next_cursor"] is None
    await eventually(lambda: gauge_is(svc2, no_contact=1, all_channels_failed=1), timeout=10)

    # An address arrives for the silent customer: their notice goes out, they leave the queue.
    await svc2.publish(kit.customer(silent, email_=kit.new_email()))
    await svc2.wait_for_notices(
        alerts[silent].alert_id, lambda ns: ns and ns[0]["status"] == "sent"
    )
    assert [i["customer_id"] for i in (await queue(svc2))["items"]] == [bounced]
    await eventually(lambda: gauge_is(svc2, no_contact=0, all_channels_failed=1), timeout=10)


async def test_the_queue_takes_an_operator_key_and_refuses_bad_parameters(svc2: Any) -> None:
    assert (await svc2.client.get("/v1/unreachable", headers={"X-Api-Key": ""})).status_code == 401
    r = await svc2.client.get("/v1/unreachable", params={"reason": "lost"})
    assert r.status_code == 422 and "reason" in r.text
    r = await svc2.client.get("/v1/unreachable", params={"limit": 0})
    assert r.status_code == 422 and "limit" in r.text
