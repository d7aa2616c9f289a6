"""What became of a sent notice: a DSN handed by SMTP to the notifier's bounce listener (the shape
a real MX delivers it in), and Mailgun's signed webhook, each moving the notice to delivered,
bounced (hard; soft, which re-sends it) or complained, with its event on notifications.v1."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest
import pytest_asyncio

from notifier.webhook import mailgun_signature
from recall_shared.testing import eventually
from recall_shared.topics import NOTIFICATIONS

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

SAMPLES = Path(__file__).parents[1] / "unit" / "dsn_samples"
SAMPLE_NOTICE = "3f2c8a9e-1b7d-4c55-9a0e-6d2f4b8c1e07"
SAMPLE_VERP = f"bounces+{SAMPLE_NOTICE}.0000@recall-alerts.invalid"
SIGNING_KEY = "key-" + "7" * 32


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def reach(start_notifier: Any) -> AsyncIterator[Any]:
    async with start_notifier(
        bounce_smtp_port=0,
        mailgun_webhook_signing_key=SIGNING_KEY,
        soft_bounce_resends=1,
        soft_bounce_retry_s=0.2,
    ) as n:
        await n.app.state.bounces.bound.wait()
        yield n


async def sent_notice(reach: Any, kit: Any) -> tuple[dict, Any]:
    """A customer told of an alert: (their sent notice, the mail as the relay got it)."""
    cid, addr = kit.new_customer(), kit.new_email()
    await reach.publish(kit.customer(cid, email_=addr))
    alert = kit.alert(cid)
    await reach.publish(kit.raised(alert))
    (notice,) = await reach.wait_for_notices(
        alert.alert_id, lambda ns: len(ns) == 1 and ns[0]["status"] == "sent"
    )
    (mail,) = await kit.wait_for_mails(addr, 1)
    return notice, mail


def dsn(sample: str, return_path: str, notice_id: str) -> bytes:
    """A real DSN shape, addressed to this notice's return path and quoting its headers."""
    raw = (SAMPLES / sample).read_text()
    return raw.replace(SAMPLE_VERP, return_path).replace(SAMPLE_NOTICE, notice_id).encode()


async def hand_over(reach: Any, rcpt: str, message: bytes) -> None:
    """What the bounce domain's MX does: one SMTP transaction to the bounce listener, from the
    null sender (RFC 3464: a DSN has an empty return path, so it never bounces back)."""
    smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=reach.app.state.bounces.port, timeout=10)
    await smtp.connect()
    try:
        await smtp.mail("")
        response = await smtp.rcpt(rcpt)
        await smtp.data(message)
    finally:
        await smtp.quit()
    assert response.code == 250


async def events_of(reach: Any, kit: Any, notice_id: str, event_type: str) -> list[dict]:
    async def found() -> list[dict]:
        got = [
            body
            for _, env, body in await kit.read_all(reach.topic(NOTIFICATIONS))
            if env.type == event_type and body["notice_id"] == notice_id
        ]
        return got

    return await eventually(found, timeout=15, interval=0.2)


async def test_each_notice_leaves_with_its_own_return_path(reach: Any, kit: Any) -> None:
    notice, mail = await sent_notice(reach, kit)
    return_path = str(mail.message["X-Sink-Mail-From"])
    assert return_path.startswith(f"bounces+{notice['notice_id']}.")
    assert return_path.endswith("@recall-alerts.invalid"), "bounces@ the domain of mail_from"


async def test_a_hard_bounce_dsn_marks_the_notice_bounced(reach: Any, kit: Any) -> None:
    notice, mail = await sent_notice(reach, kit)
    nid, return_path = notice["notice_id"], str(mail.message["X-Sink-Mail-From"])
    await hand_over(reach, return_path, dsn("postfix_user_unknown.eml", return_path, nid))
    (after,) = await reach.wait_for_notices(
        notice["alert_id"], lambda ns: ns[0]["delivery"] == "bounced"
    )
    assert (after["status"], after["bounce_type"], after["delivery_status"]) == (
        "sent",
        "hard",
        "5.1.1",
    )
    assert "User unknown" in after["delivery_detail"]
    (event,) = await events_of(reach, kit, nid, "notification.bounced.v1")
    assert (event["bounce_type"], event["status"], event["source"]) == ("hard", "5.1.1", "dsn")
    # The same DSN again (the MX retried after a lost reply): nothing new.
    await hand_over(reach, return_path, dsn("postfix_user_unknown.eml", return_path, nid))
    assert len(await events_of(reach, kit, nid, "notification.bounced.v1")) == 1


async def test_a_dsn_to_the_plain_bounce_address_is_matched_by_its_returned_headers(
    reach: Any, kit: Any
) -> None:
    notice, _ = await sent_notice(reach, kit)
    nid = notice["notice_id"]
    raw = dsn("exchange_ndr.eml", "bounces@recall-alerts.invalid", nid)
    await hand_over(reach, "bounces@recall-alerts.invalid", raw)
    (after,) = await reach.wait_for_notices(
        notice["alert_id"], lambda ns: ns[0]["delivery"] == "bounced"
    )
    assert after["delivery_status"] == "5.1.10"


async def test_a_soft_bounce_resends_then_counts_as_bounced(reach: Any, kit: Any) -> None:
    notice, mail = await sent_notice(reach, kit)
    nid, return_path = notice["notice_id"], str(mail.message["X-Sink-Mail-From"])
    to = mail.rcpt_to[0]
    await hand_over(reach, return_path, dsn("postfix_mailbox_full.eml", return_path, nid))
    await kit.wait_for_mails(to, 2)  # sent again (soft_bounce_resends=1)
    (again,) = await reach.wait_for_notices(
        notice["alert_id"], lambda ns: ns[0]["status"] == "sent" and ns[0]["soft_bounces"] == 1
    )
    assert again["delivery"] is None
    await hand_over(reach, return_path, dsn("postfix_mailbox_full.eml", return_path, nid))
    (after,) = await reach.wait_for_notices(
        notice["alert_id"], lambda ns: ns[0]["delivery"] == "bounced"
    )
    assert after["bounce_type"] == "soft"
    (event,) = await events_of(reach, kit, nid, "notification.bounced.v1")
    assert event["bounce_type"] == "soft"
    assert len(await kit.mails_to(to)) == 2, "no third copy"


async def test_a_delay_report_changes_nothing_but_the_detail(reach: Any, kit: Any) -> None:
    notice, mail = await sent_notice(reach, kit)
    nid, return_path = notice["notice_id"], str(mail.message["X-Sink-Mail-From"])
    await hand_over(reach, return_path, dsn("postfix_delayed.eml", return_path, nid))
    (after,) = await reach.wait_for_notices(
        notice["alert_id"], lambda ns: ns[0]["delivery_status"] == "4.4.1"
    )
    assert (after["status"], after["delivery"]) == ("sent", None)


async def test_only_return_paths_we_minted_are_taken(reach: Any, kit: Any) -> None:
    notice, _ = await sent_notice(reach, kit)
    forged = f"bounces+{notice['notice_id']}.000000000000@recall-alerts.invalid"
    with pytest.raises(aiosmtplib.SMTPResponseException, match="not a bounce address"):
        await hand_over(reach, forged, dsn("postfix_user_unknown.eml", forged, str(uuid.uuid4())))
    with pytest.raises(aiosmtplib.SMTPResponseException, match="not a bounce address"):
        await hand_over(reach, "someone@recall-alerts.invalid", b"Subject: hi\r\n\r\nhi\r\n")


async def test_a_feedback_report_marks_the_notice_complained(reach: Any, kit: Any) -> None:
    notice, mail = await sent_notice(reach, kit)
    nid = notice["notice_id"]
    raw = dsn("arf_abuse_complaint.eml", str(mail.message["X-Sink-Mail-From"]), nid)
    await hand_over(reach, "bounces@recall-alerts.invalid", raw)
    await reach.wait_for_notices(notice["alert_id"], lambda ns: ns[0]["delivery"] == "complained")
    (event,) = await events_of(reach, kit, nid, "notification.complained.v1")
    assert event["source"] == "arf"


# --------------------------------------------------------------------------- Mailgun's webhook


def mailgun_body(
    notice_id: str,
    event: str,
    *,
    severity: str = "",
    key: str = SIGNING_KEY,
    signed_at: float | None = None,
) -> dict:
    timestamp = str(int(signed_at if signed_at is not None else time.time()))
    token = uuid.uuid4().hex + uuid.uuid4().hex[:18]  # 50 characters, as Mailgun's
    return {
        "signature": {
            "timestamp": timestamp,
            "token": token,
            "signature": mailgun_signature(key, timestamp, token),
        },
        "event-data": {
            "event": event,
            "severity": severity,
            "id": uuid.uuid4().hex[:22],
            "timestamp": time.time(),
            "recipient": "someone@customer.example",
            "message": {"headers": {"message-id": f"{notice_id}@recall-alerts.notices"}},
            "delivery-status": {
                "code": 550 if event == "failed" else 250,
                "message": "5.1.1 The email account that you tried to reach does not exist",
                "description": "",
            },
        },
    }


async def test_mailgun_delivered_and_failed_events_with_good_signatures(
    reach: Any, kit: Any
) -> None:
    notice, _ = await sent_notice(reach, kit)
    nid = notice["notice_id"]
    r = await reach.client.post("/v1/webhooks/mailgun", json=mailgun_body(nid, "delivered"))
    assert r.status_code == 200, r.text
    assert r.json() == {"recorded": True}
    (after,) = await reach.notices(notice["alert_id"])
    assert after["delivery"] == "delivered"
    (event,) = await events_of(reach, kit, nid, "notification.delivered.v1")
    assert event["source"] == "mailgun"
    # A temporary failure: Mailgun is still retrying, nothing is decided.
    body = mailgun_body(nid, "failed", severity="temporary")
    assert (await reach.client.post("/v1/webhooks/mailgun", json=body)).json() == {
        "recorded": False
    }
    # Opened: nothing to do with delivery.
    body = mailgun_body(nid, "opened")
    assert (await reach.client.post("/v1/webhooks/mailgun", json=body)).json() == {
        "recorded": False
    }
    other, _ = await sent_notice(reach, kit)
    body = mailgun_body(other["notice_id"], "failed", severity="permanent")
    assert (await reach.client.post("/v1/webhooks/mailgun", json=body)).json() == {"recorded": True}
    (bounced,) = await reach.notices(other["alert_id"])
    assert (bounced["delivery"], bounced["bounce_type"]) == ("bounced", "hard")


async def test_mailgun_events_with_bad_signatures_are_refused(reach: Any, kit: Any) -> None:
    notice, _ = await sent_notice(reach, kit)
    nid = notice["notice_id"]
    wrong_key = mailgun_body(nid, "failed", severity="permanent", key="key-" + "0" * 32)
    r = await reach.client.post("/v1/webhooks/mailgun", json=wrong_key)
    assert r.status_code == 401 and "signature.signature" in r.json()["detail"]
    tampered = mailgun_body(nid, "delivered")
    tampered["signature"]["token"] = tampered["signature"]["token"][::-1]
    r = await reach.client.post("/v1/webhooks/mailgun", json=tampered)
    assert r.status_code == 401
    replayed = mailgun_body(nid, "failed", severity="permanent", signed_at=time.time() - 3600)
    r = await reach.client.post("/v1/webhooks/mailgun", json=replayed)
    assert r.status_code == 401 and "signature.timestamp" in r.json()["detail"]
    no_signature = mailgun_body(nid, "delivered")
    del no_signature["signature"]
    r = await reach.client.post("/v1/webhooks/mailgun", json=no_signature)
    assert r.status_code == 401 and r.json()["detail"] == "signature: missing or malformed"
    r = await reach.client.post("/v1/webhooks/mailgun", content=b"not json")
    assert r.status_code == 401
    # Signed, but not an event: a 422 naming the field.
    no_event = mailgun_body(nid, "delivered")
    del no_event["event-data"]["event"]
    r = await reach.client.post("/v1/webhooks/mailgun", json=no_event)
    assert r.status_code == 422 and "event" in r.text
    (after,) = await reach.notices(notice["alert_id"])
    assert after["delivery"] is None, "no refused event changed the notice"


async def test_a_mailgun_event_about_someone_elses_mail_is_taken_and_ignored(reach: Any) -> None:
    body = mailgun_body(str(uuid.uuid4()), "delivered")
    body["event-data"]["message"]["headers"]["message-id"] = "2026.abc@sample.mailgun.com"
    r = await reach.client.post("/v1/webhooks/mailgun", json=body)
    assert r.status_code == 200 and r.json() == {"recorded": False}


async def test_without_keys_the_webhooks_are_not_there(start_notifier: Any) -> None:
    async with start_notifier() as n:
        r = await n.client.post("/v1/webhooks/mailgun", json=mailgun_body(str(uuid.uuid4()), "x"))
        assert r.status_code == 404 and "NOTIFIER_MAILGUN_WEBHOOK_SIGNING_KEY" in r.text
        r = await n.client.post(f"/v1/webhooks/twilio?notice_id={uuid.uuid4()}", data={})
        assert r.status_code == 404 and "NOTIFIER_SMS_PROVIDER" in r.text
