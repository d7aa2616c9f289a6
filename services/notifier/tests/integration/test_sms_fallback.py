"""The second channel end to end: the real Twilio adapter against the SMS sandbox (Twilio's Messages
API contract, in process), its signed status callbacks into the notifier's webhook. A hard bounce
falls back to SMS, which is delivered; a customer without email is reached by SMS; a number that
cannot be reached leaves the customer in the unreachable queue; the channel policy holds."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from notifier.sms import twilio_signature
from notifier.webhook import mailgun_signature
from recall_shared.testing import eventually
from recall_shared.topics import NOTIFICATIONS

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

MAILGUN_KEY = "key-" + "3" * 32
PHONE = "+4915112345678"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def reach(start_notifier: Any, twilio_sandbox: Any) -> AsyncIterator[Any]:
    async with (
        twilio_sandbox() as (sandbox, via_sandbox),
        start_notifier(
            **via_sandbox,
            mailgun_webhook_signing_key=MAILGUN_KEY,
        ) as n,
    ):

        async def callback(url: str, data: dict[str, str], headers: dict[str, str]) -> None:
            r = await n.client.post(url, data=data, headers=headers)
            assert r.status_code == 200, r.text

        sandbox.callback = callback  # the sandbox calls the notifier back, as Twilio would
        n.sandbox = sandbox
        yield n


async def customer_with(reach: Any, kit: Any, *, email: str | None, phone: str | None) -> str:
    cid = kit.new_customer()
    event = kit.customer(cid, email_=email).model_copy(update={"phone": phone})
    await reach.publish(event)
    return cid


async def hard_bounce(reach: Any, notice_id: str) -> None:
    ts, token = str(int(time.time())), uuid.uuid4().hex
    body = {
        "signature": {
            "timestamp": ts,
            "token": token,
            "signature": mailgun_signature(MAILGUN_KEY, ts, token),
        },
        "event-data": {
            "event": "failed",
            "severity": "permanent",
            "message": {"headers": {"message-id": f"{notice_id}@recall-alerts.notices"}},
            "delivery-status": {"code": 550, "message": "5.1.1 no such user"},
        },
    }
    r = await reach.client.post("/v1/webhooks/mailgun", json=body)
    assert r.json() == {"recorded": True}, r.text


def by_channel(notices: list[dict]) -> dict[str, dict]:
    return {n.get("channel", "email"): n for n in notices}


async def events_for(reach: Any, kit: Any, notice_id: str) -> list[tuple[str, dict]]:
    return [
        (env.type, body)
        for _, env, body in await kit.read_all(reach.topic(NOTIFICATIONS))
        if body["notice_id"] == notice_id
    ]


async def test_a_hard_bounce_falls_back_to_an_sms_that_is_delivered(reach: Any, kit: Any) -> None:
    address = kit.new_email()
    cid = await customer_with(reach, kit, email=address, phone=PHONE)
    alert = kit.alert(cid)
    await reach.publish(kit.raised(alert))
    (email,) = await reach.wait_for_notices(
        alert.alert_id, lambda ns: len(ns) == 1 and ns[0]["status"] == "sent"
    )
    await hard_bounce(reach, email["notice_id"])
    # The sandbox reports the delivery at once, sometimes before the sender has recorded the send:
    # wait for both.
    notices = await reach.wait_for_notices(
        alert.alert_id,
        lambda ns: (
            len(ns) == 2
            and by_channel(ns).get("sms", {}).get("delivery") == "delivered"
            and by_channel(ns)["sms"]["status"] == "sent"
        ),
    )
    sms = by_channel(notices)["sms"]
    assert sms["message_id"].startswith("SMsandbox")
    assert by_channel(notices)["email"]["delivery"] == "bounced"
    (text,) = [m for m in reach.sandbox.messages.values() if m["sid"] == sms["message_id"]]
    assert text["to"] == PHONE and f"/recalls/{alert.alert_id}" in text["body"]

    async def both() -> list[tuple[str, dict]]:
        got = await events_for(reach, kit, sms["notice_id"])
        return got if len(got) == 2 else []

    events = dict(await eventually(both, timeout=15))
    assert events["notification.sms_sent.v1"]["channel"] == "sms"
    assert events["notification.delivered.v1"]["channel"] == "sms"
    assert events["notification.delivered.v1"]["source"] == "twilio"
    assert len(await kit.mails_to(address)) == 1, "the SMS notice never goes out by email"


async def test_a_customer_without_email_is_reached_by_sms(reach: Any, kit: Any) -> None:
    cid = await customer_with(reach, kit, email=None, phone=PHONE)
    alert = kit.alert(cid)
    await reach.publish(kit.raised(alert))
    notices = await reach.wait_for_notices(
        alert.alert_id,
        lambda ns: by_channel(ns).get("sms", {}).get("delivery") == "delivered",
    )
    assert by_channel(notices)["email"]["status"] == "waiting_contact"
    queue = (await reach.client.get("/v1/unreachable")).json()
    assert cid not in [i["customer_id"] for i in queue["items"]], "reached: not in the queue"


async def test_a_number_that_cannot_be_reached_leaves_the_customer_unreachable(
    reach: Any, kit: Any
) -> None:
    cid = await customer_with(reach, kit, email=None, phone="+15005550003")
    alert = kit.alert(cid)
    await reach.publish(kit.raised(alert))
    notices = await reach.wait_for_notices(
        alert.alert_id, lambda ns: by_channel(ns).get("sms", {}).get("delivery") == "bounced"
    )
    assert by_channel(notices)["sms"]["delivery_status"] == "30003"
    queue = (await reach.client.get("/v1/unreachable")).json()
    (entry,) = [i for i in queue["items"] if i["customer_id"] == cid]
    assert entry["reason"] == "all_channels_failed"


async def test_an_invalid_number_is_refused_and_counted_as_a_bounce(reach: Any, kit: Any) -> None:
    cid = await customer_with(reach, kit, email=None, phone="+15005550001")
    alert = kit.alert(cid)
    await reach.publish(kit.raised(alert))
    notices = await reach.wait_for_notices(
        alert.alert_id, lambda ns: by_channel(ns).get("sms", {}).get("status") == "failed"
    )
    sms = by_channel(notices)["sms"]
    assert (sms["delivery"], sms["bounce_type"], sms["delivery_status"]) == (
        "bounced",
        "hard",
        "21211",
    )


async def test_the_policy_keeps_low_severity_and_opted_out_customers_off_sms(
    reach: Any, kit: Any
) -> None:
    low = await customer_with(reach, kit, email=None, phone=PHONE)
    alert = kit.alert(low)
    alert = alert.model_copy(update={"recall": alert.recall.model_copy(update={"severity": "low"})})
    await reach.publish(kit.raised(alert))
    opted_out = kit.new_customer()
    await reach.publish(
        kit.customer(opted_out).model_copy(update={"phone": PHONE, "sms_opt_out": True})
    )
    other = kit.alert(opted_out)
    await reach.publish(kit.raised(other))
    for a in (alert, other):
        (only,) = await reach.wait_for_notices(
            a.alert_id, lambda ns: len(ns) == 1 and ns[0]["status"] == "waiting_contact"
        )
        assert only["channel"] == "email"
    queue = (await reach.client.get("/v1/unreachable", params={"reason": "no_contact"})).json()
    assert {low, opted_out} <= {i["customer_id"] for i in queue["items"]}


async def test_status_callbacks_with_a_bad_signature_are_refused(reach: Any) -> None:
    url = f"http://testserver/v1/webhooks/twilio?notice_id={uuid.uuid4()}"
    data = {"MessageSid": "SMx", "MessageStatus": "delivered"}
    r = await reach.client.post(url, data=data, headers={"X-Twilio-Signature": "AAAA"})
    assert r.status_code == 401 and "X-Twilio-Signature" in r.json()["detail"]
    r = await reach.client.post(url, data=data)
    assert r.status_code == 401
    forged = twilio_signature("not the token", url, data.items())
    r = await reach.client.post(url, data=data, headers={"X-Twilio-Signature": forged})
    assert r.status_code == 401
    good = twilio_signature(reach.sandbox.auth_token, url, data.items())
    r = await reach.client.post(url, data=data, headers={"X-Twilio-Signature": good})
    assert r.status_code == 200 and r.json() == {"recorded": False}, "no such notice"
