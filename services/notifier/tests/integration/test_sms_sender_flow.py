"""The SMS sender's flow against the SMS sandbox through the real Twilio adapter, slowed down: a
notice whose lease ran out while it waited for a request slot is released and sent once, not
twice, and an outcome is recorded only for the claim it belongs to."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from notifier.sms import SmsAccepted

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

SEND_S = 0.3


class SlowProvider:
    """The real adapter, each request taking SEND_S longer (a slow provider)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def send(self, *, to: str, body: str, status_callback: str) -> SmsAccepted:
        await asyncio.sleep(SEND_S)
        accepted: SmsAccepted = await self.inner.send(
            to=to, body=body, status_callback=status_callback
        )
        return accepted


async def test_a_notice_whose_lease_ran_out_in_the_queue_is_released_and_sent_once(
    start_notifier: Any, twilio_sandbox: Any, kit: Any
) -> None:
    phones = [f"+49151000{i:05d}" for i in range(3)]
    async with twilio_sandbox() as (sandbox, via_sandbox):
        via_sandbox |= {"sms": SlowProvider(via_sandbox["sms"]), "sms_poll_s": 0.05}
        # One request at a time, each longer than half the lease: the third waits past it.
        async with start_notifier(**via_sandbox, sms_concurrency=1, send_lease_s=0.5) as n:
            alerts = []
            for phone in phones:
                cid = kit.new_customer()
                await n.publish(kit.customer(cid).model_copy(update={"phone": phone}))
                alerts.append(kit.alert(cid))
            for alert in alerts:
                await n.publish(kit.raised(alert))

            def sms_sent(ns: list[dict]) -> bool:
                return any(x["channel"] == "sms" and x["status"] == "sent" for x in ns)

            sms = []
            for alert in alerts:
                notices = await n.wait_for_notices(alert.alert_id, sms_sent, timeout=20)
                sms += [x for x in notices if x["channel"] == "sms"]
    sent_to = sorted(m["to"] for m in sandbox.messages.values())
    assert sent_to == phones, "each SMS sent once, none twice"
    assert all(x["status"] == "sent" for x in sms)
    assert max(x["attempts"] for x in sms) >= 2, "one was released and claimed again"
