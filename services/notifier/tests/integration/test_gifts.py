"""Gifts end to end: an alert with a gift line whose order gave the recipient's contact tells the
recipient too (by email, in their language, on the purchaser's behalf), and asks the purchaser to
pass the notice on."""

from __future__ import annotations

from typing import Any

import pytest

from recall_shared import events as ev
from recall_shared.testing import eventually
from recall_shared.topics import NOTIFICATIONS

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]


async def test_a_gift_recipient_is_notified_and_the_buyer_asked_to_pass_it_on(
    svc: Any, kit: Any
) -> None:
    buyer, buyer_email, gil_email = kit.new_customer(), kit.new_email(), kit.new_email("gil")
    await svc.publish(kit.customer(buyer, email_=buyer_email))
    alert = kit.alert(buyer)
    gift = alert.lines[0].model_copy(
        update={
            "is_gift": True,
            "gift_recipient": ev.GiftRecipient(name="Gil", email=gil_email, locale="de"),
        }
    )
    alert = alert.model_copy(update={"lines": [gift]})
    await svc.publish(kit.raised(alert))
    notices = await svc.wait_for_notices(
        alert.alert_id, lambda ns: len(ns) == 2 and all(n["status"] == "sent" for n in ns)
    )
    assert sorted(n["recipient_role"] for n in notices) == ["gift_recipient", "purchaser"]
    (to_gil,) = await kit.wait_for_mails(gil_email, 1)
    assert "geschenkt bekommen" in to_gil.text and to_gil.text.startswith("Guten Tag Gil,")
    (to_buyer,) = await kit.wait_for_mails(buyer_email, 1)
    assert "Please pass this notice on to the person who has the product now" in " ".join(
        to_buyer.text.split()
    )
    gil_notice = next(n for n in notices if n["recipient_role"] == "gift_recipient")

    async def sent_event() -> dict | None:
        for _, env, body in await kit.read_all(svc.topic(NOTIFICATIONS)):
            if env.type == "notification.sent.v1" and body["notice_id"] == gil_notice["notice_id"]:
                return body
        return None

    body = await eventually(sent_event, timeout=15)
    assert (body["recipient_role"], body["gift_recipient"], body["customer_id"]) == (
        "purchaser",
        True,
        buyer,
    )


async def test_a_withdrawal_reaches_the_gift_recipient_too(svc: Any, kit: Any) -> None:
    buyer, gil_email = kit.new_customer(), kit.new_email("gil")
    await svc.publish(kit.customer(buyer, email_=kit.new_email()))
    alert = kit.alert(buyer)
    gift = alert.lines[0].model_copy(
        update={"is_gift": True, "gift_recipient": ev.GiftRecipient(email=gil_email)}
    )
    alert = alert.model_copy(update={"lines": [gift]})
    await svc.publish(kit.raised(alert))
    await svc.wait_for_notices(
        alert.alert_id, lambda ns: len(ns) == 2 and all(n["status"] == "sent" for n in ns)
    )
    await svc.publish(kit.withdrawn(alert))
    notices = await svc.wait_for_notices(
        alert.alert_id,
        lambda ns: sum(n["kind"] == "withdrawal" and n["status"] == "sent" for n in ns) == 2,
    )
    assert sorted(n["recipient_role"] for n in notices if n["kind"] == "withdrawal") == [
        "gift_recipient",
        "purchaser",
    ]
    await kit.wait_for_mails(gil_email, 2)
