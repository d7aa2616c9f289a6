"""Remedy notices (issue 14): a case's return label, refund and replacement dispatch reach the
customer by email from remedies.v1, once each however often the event comes, in their language,
with their own events on notifications.v1 and the delivery states of any notice. Real Kafka,
PostgreSQL and SMTP sink."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import pytest_asyncio

from notifier.webhook import mailgun_signature
from recall_shared import events as ev
from recall_shared.testing import eventually
from recall_shared.topics import NOTIFICATIONS

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

SIGNING_KEY = "key-" + "5" * 32
LABEL_URL = "https://carrier.example/labels/SBX000000000042.pdf"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def remedy(start_notifier: Any) -> AsyncIterator[Any]:
    async with start_notifier(mailgun_webhook_signing_key=SIGNING_KEY) as n:
        yield n


async def told(svc: Any, kit: Any, locale: str = "en") -> tuple[ev.AlertState, str]:
    """A customer whose recall notice went out (one mail in the sink)."""
    cid, addr = kit.new_customer(), kit.new_email()
    alert = kit.alert(cid, title=f"Remedy kettle {uuid.uuid4().hex[:6]}")
    await svc.publish(kit.customer(cid, email_=addr, locale=locale))
    await svc.publish(kit.raised(alert))
    await kit.wait_for_mails(addr, 1)
    return alert, addr


def transition(
    alert: ev.AlertState, case_id: str, name: str, from_state: str | None, state: str, **kw: Any
) -> ev.RemedyCaseTransitioned:
    return ev.RemedyCaseTransitioned(
        case_id=case_id,
        request_id=case_id,
        alert_id=alert.alert_id,
        customer_id=alert.customer_id,
        recall_id=alert.recall_id,
        seller_id="seller-1",
        remedy=kw.pop("remedy", "refund_with_return"),
        transition=name,
        from_state=from_state,
        state=state,
        occurred_at=datetime.now(UTC),
        **kw,
    )


async def remedy_events(svc: Any, kit: Any, case_id: str, count: int) -> list[dict]:
    async def found() -> list[dict] | None:
        got = [
            body
            for _, env, body in await kit.read_all(svc.topic(NOTIFICATIONS))
            if env.type == "notification.remedy_notice.v1" and body["case_id"] == case_id
        ]
        return got if len(got) >= count else None

    return await eventually(found, timeout=15, interval=0.2)


async def test_the_label_then_the_refund_confirmation_reach_the_customer_once_each(
    remedy: Any, kit: Any
) -> None:
    alert, addr = await told(remedy, kit)
    case_id = str(uuid.uuid4())
    await remedy.publish(transition(alert, case_id, "open", None, "requested", waiting_for="label"))
    label = transition(
        alert,
        case_id,
        "issue_label",
        "requested",
        "label_issued",
        waiting_for="item",
        label=ev.ReturnLabelRef(tracking_number="SBX000000000042", label_url=LABEL_URL),
    )
    await remedy.publish(label)
    await remedy.publish(label)  # a repeat of the transition (another event id): no second mail
    mails = await kit.wait_for_mails(addr, 2)
    mail = mails[-1]
    assert mail.subject == f"Your prepaid return label: {alert.recall.title}"
    assert f"Download your return label: {LABEL_URL}" in mail.text
    assert "Parcel tracking number: SBX000000000042" in mail.text
    assert f'<a href="{LABEL_URL}"' in mail.html
    assert mail.message.get_content_maintype() == "multipart"
    assert not any(p.get_filename() for p in mail.message.walk()), "a link, not an attachment"

    await remedy.publish(
        transition(alert, case_id, "receive_item", "label_issued", "item_received")
    )
    await remedy.publish(
        transition(
            alert,
            case_id,
            "issue_refund",
            "item_received",
            "refunded",
            refunded_amount=Decimal("39.98"),
            currency="EUR",
        )
    )
    mails = await kit.wait_for_mails(addr, 3)
    assert mails[-1].subject == f"Your refund has been paid: {alert.recall.title}"
    assert "€39.98 has been refunded to your original payment method" in mails[-1].text

    sent = await remedy_events(remedy, kit, case_id, 2)
    assert sorted((e["kind"], e["status"]) for e in sent) == [
        ("refund_confirmed", "sent"),
        ("return_label", "sent"),
    ]
    assert {e["recipient_role"] for e in sent} == {"purchaser"}
    notices = await remedy.notices(alert.alert_id)
    assert sorted(n["kind"] for n in notices) == ["initial", "refund_confirmed", "return_label"]
    assert not [
        body
        for _, env, body in await kit.read_all(remedy.topic(NOTIFICATIONS))
        if env.type == "notification.sent.v1"
        and body["notice_id"] in {e["notice_id"] for e in sent}
    ], "remedy notices are announced by their own event type only"
    await asyncio.sleep(0.5)
    assert len(await kit.mails_to(addr)) == 3


async def test_the_replacement_dispatch_in_german_and_its_bounce(remedy: Any, kit: Any) -> None:
    alert, addr = await told(remedy, kit, locale="de")
    case_id = str(uuid.uuid4())
    await remedy.publish(
        transition(
            alert,
            case_id,
            "ship_replacement",
            "requested",
            "replacement_shipped",
            remedy="replacement",
        )
    )
    mails = await kit.wait_for_mails(addr, 2)
    assert mails[-1].subject == f"Ihr Ersatz ist unterwegs: {alert.recall.title}"
    assert "Ihr kostenloser Ersatz für das zurückgerufene Produkt" in mails[-1].text

    (sent,) = await remedy_events(remedy, kit, case_id, 1)
    nid = sent["notice_id"]
    timestamp, token = str(int(time.time())), uuid.uuid4().hex + uuid.uuid4().hex[:18]
    body = {
        "signature": {
            "timestamp": timestamp,
            "token": token,
            "signature": mailgun_signature(SIGNING_KEY, timestamp, token),
        },
        "event-data": {
            "event": "failed",
            "severity": "permanent",
            "id": uuid.uuid4().hex[:22],
            "timestamp": time.time(),
            "recipient": addr,
            "message": {"headers": {"message-id": f"{nid}@recall-alerts.notices"}},
            "delivery-status": {"code": 550, "message": "5.1.1 no such user", "description": ""},
        },
    }
    r = await remedy.client.post("/v1/webhooks/mailgun", json=body)
    assert r.json() == {"recorded": True}, r.text
    (notice,) = [n for n in await remedy.notices(alert.alert_id) if n["notice_id"] == nid]
    assert (notice["kind"], notice["delivery"], notice["bounce_type"]) == (
        "replacement_shipped",
        "bounced",
        "hard",
    )
    events = await remedy_events(remedy, kit, case_id, 2)
    bounced = [e for e in events if e["status"] == "bounced"]
    assert [(e["kind"], e["bounce_type"], e["source"]) for e in bounced] == [
        ("replacement_shipped", "hard", "mailgun")
    ]


async def test_steps_that_tell_nothing_new_send_nothing(remedy: Any, kit: Any) -> None:
    alert, addr = await told(remedy, kit)
    case_id = str(uuid.uuid4())
    for event in (
        transition(alert, case_id, "open", None, "requested", waiting_for="label"),
        # a label_issued state without a label (an older producer) has no link to send
        transition(alert, case_id, "issue_label", "requested", "label_issued"),
        transition(alert, case_id, "close", "label_issued", "closed"),
    ):
        await remedy.publish(event)
    marker_case = str(uuid.uuid4())
    await remedy.publish(
        transition(
            alert,
            marker_case,
            "ship_replacement",
            "requested",
            "replacement_shipped",
            remedy="replacement",
        )
    )
    # the marker's mail arrives after everything published before it on the same partition
    mails = await kit.wait_for_mails(addr, 2)
    assert mails[-1].subject.startswith("Your replacement is on its way")
