"""Notices end to end through Kafka, PostgreSQL and the real SMTP sink."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from recall_shared.testing import eventually
from recall_shared.topics import NOTIFICATIONS

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]


async def _notification_events(svc, kit, customer_id: str) -> list[tuple[str, dict]]:
    return [
        (env.type, body)
        for key, env, body in await kit.read_all(svc.topic(NOTIFICATIONS))
        if key == customer_id.encode()
    ]


async def test_customer_gets_exactly_one_personal_recall_notice(svc, kit) -> None:
    cid, addr = kit.new_customer(), kit.new_email()
    alert = kit.alert(cid, title=f"Kettle {uuid.uuid4().hex[:6]}", units=3)
    await svc.publish(kit.customer(cid, email_=addr, name="Alex Doe"))
    await svc.publish(kit.raised(alert))

    (mail,) = await kit.wait_for_mails(addr, 1)
    assert mail.subject == f"Product safety recall: {alert.recall.title}"
    assert mail.rcpt_to == [addr]
    assert "Alex Doe" in str(mail.message["To"])
    text = mail.text
    assert "Dear Alex Doe," in text
    assert alert.recall.stop_using in text
    assert text.index(alert.recall.stop_using) < text.index(alert.recall.hazard)
    assert "bought on 14 Mar 2025, 3 unit(s), order ord-20250314-1" in text
    assert "A full refund of the price you paid, on proof of destruction" in text
    assert f"{kit.portal}/recalls/{alert.alert_id}" in text
    assert alert.recall.hazard in mail.html

    notices = await svc.wait_for_notices(
        alert.alert_id, lambda ns: ns and ns[0]["status"] == "sent"
    )
    assert len(notices) == 1
    n = notices[0]
    assert n["kind"] == "initial" and n["alert_version"] == 1 and n["recipient_role"] == "purchaser"
    assert n["attempts"] == 1 and n["sent_at"] is not None
    assert mail.message["X-Recall-Notice-Id"] == n["notice_id"]

    async def sent_event() -> list:
        return [
            b for t, b in await _notification_events(svc, kit, cid) if t == "notification.sent.v1"
        ]

    (event,) = await eventually(sent_event, timeout=15)
    assert event["notice_id"] == n["notice_id"]
    assert event["alert_id"] == alert.alert_id and event["recall_id"] == alert.recall_id
    assert (
        event["kind"] == "initial"
        and event["recipient_role"] == "purchaser"
        and event["channel"] == "email"
    )


async def test_safety_contact_takes_precedence_over_the_regular_email(svc, kit) -> None:
    cid, regular, safety = kit.new_customer(), kit.new_email("regular"), kit.new_email("safety")
    alert = kit.alert(cid)
    await svc.publish(kit.customer(cid, email_=regular, safety_email=safety))
    await svc.publish(kit.raised(alert))
    (mail,) = await kit.wait_for_mails(safety, 1)
    assert mail.subject.startswith("Product safety recall:")

    async def sent_event() -> list:
        return [
            b for t, b in await _notification_events(svc, kit, cid) if t == "notification.sent.v1"
        ]

    (event,) = await eventually(sent_event, timeout=15)
    assert event["recipient_role"] == "safety_contact"
    assert await kit.mails_to(regular) == []


async def test_alert_before_the_contact_waits_and_is_sent_when_the_contact_arrives(
    svc, kit
) -> None:
    cid, addr = kit.new_customer(), kit.new_email()
    alert = kit.alert(cid)
    await svc.publish(kit.raised(alert))
    waiting = await svc.wait_for_notices(alert.alert_id, lambda ns: len(ns) == 1)
    assert waiting[0]["status"] == "waiting_contact"
    # A contact without any address does not release it.
    await svc.publish(kit.customer(cid, email_=None))
    await asyncio.sleep(0.8)
    assert (await svc.notices(alert.alert_id))[0]["status"] == "waiting_contact"

    await svc.publish(kit.customer(cid, email_=addr))
    (mail,) = await kit.wait_for_mails(addr, 1)
    assert alert.recall.title in mail.subject
    await svc.wait_for_notices(alert.alert_id, lambda ns: ns[0]["status"] == "sent")


async def test_redelivered_or_republished_alert_sends_nothing_new(svc, kit) -> None:
    cid, addr = kit.new_customer(), kit.new_email()
    alert = kit.alert(cid, title="Redelivered kettle")
    await svc.publish(kit.customer(cid, email_=addr))
    ce_id = str(uuid.uuid4())
    await svc.publish(kit.raised(alert), event_id=ce_id)
    await kit.wait_for_mails(addr, 1)

    await svc.publish(kit.raised(alert), event_id=ce_id)  # Kafka redelivery: same ce_id
    await svc.publish(
        kit.raised(alert)
    )  # the matcher re-publishing the same alert version: new ce_id
    await svc.publish(kit.updated(alert))  # an update that does not change the version
    # A second alert for the same customer (same partition) is processed after those, so when its
    # mail arrives, the repeats have been handled.
    marker = kit.alert(cid, title="Marker lamp")
    await svc.publish(kit.raised(marker))

    async def marker_sent() -> bool:
        return any("Marker lamp" in m.subject for m in await kit.mails_to(addr))

    await eventually(marker_sent, timeout=15)
    await asyncio.sleep(0.5)
    mails = await kit.mails_to(addr)
    assert sorted(m.subject for m in mails) == sorted(
        ["Product safety recall: Redelivered kettle", "Product safety recall: Marker lamp"]
    )
    assert len(await svc.notices(alert.alert_id)) == 1


async def test_business_account_purchaser_and_admin_each_get_one_notice(svc, kit) -> None:
    buyer, admin = kit.new_customer(), kit.new_customer()
    buyer_addr, admin_addr = kit.new_email("buyer"), kit.new_email("admin")
    alert = kit.alert(buyer, admin_id=admin)
    await svc.publish(kit.customer(buyer, email_=buyer_addr, name="Buyer"))
    await svc.publish(kit.customer(admin, email_=admin_addr, name="Admin"))
    await svc.publish(kit.raised(alert))
    (to_buyer,) = await kit.wait_for_mails(buyer_addr, 1)
    (to_admin,) = await kit.wait_for_mails(admin_addr, 1)
    assert to_buyer.subject == to_admin.subject == f"Product safety recall: {alert.recall.title}"
    assert "bought on your business account" in to_admin.text
    assert "bought on your business account" not in to_buyer.text
    notices = await svc.wait_for_notices(
        alert.alert_id, lambda ns: len(ns) == 2 and all(n["status"] == "sent" for n in ns)
    )
    assert sorted(n["recipient_role"] for n in notices) == ["account_admin", "purchaser"]
    await asyncio.sleep(0.5)
    assert len(await kit.mails_to(buyer_addr)) == 1 and len(await kit.mails_to(admin_addr)) == 1


async def test_a_higher_alert_version_sends_one_update_notice(svc, kit) -> None:
    cid, addr = kit.new_customer(), kit.new_email()
    v1 = kit.alert(cid, title="Updated heater", units=1)
    await svc.publish(kit.customer(cid, email_=addr))
    await svc.publish(kit.raised(v1))
    await kit.wait_for_mails(addr, 1)
    v2 = v1.model_copy(
        update={"alert_version": 2, "lines": [v1.lines[0].model_copy(update={"units": 4})]}
    )
    await svc.publish(kit.updated(v2))
    await svc.publish(kit.updated(v2))  # the same update again (new ce_id) is not a second notice
    mails = await kit.wait_for_mails(addr, 2)
    update = mails[-1]
    assert update.subject == "Product safety recall: Updated heater (updated)"
    assert "The recall of a product you bought has changed" in update.text
    assert "4 unit(s)" in update.text
    notices = await svc.wait_for_notices(
        v1.alert_id, lambda ns: len(ns) == 2 and all(n["status"] == "sent" for n in ns)
    )
    assert sorted((n["kind"], n["alert_version"]) for n in notices) == [
        ("initial", 1),
        ("update", 2),
    ]
    await asyncio.sleep(0.5)
    assert len(await kit.mails_to(addr)) == 2


async def test_withdrawal_after_a_sent_notice_sends_one_withdrawal(svc, kit) -> None:
    cid, addr = kit.new_customer(), kit.new_email()
    alert = kit.alert(cid, title="Withdrawn toaster")
    await svc.publish(kit.customer(cid, email_=addr))
    await svc.publish(kit.raised(alert))
    await kit.wait_for_mails(addr, 1)
    await svc.wait_for_notices(alert.alert_id, lambda ns: ns[0]["status"] == "sent")
    w = kit.withdrawn(alert)
    await svc.publish(w)
    await svc.publish(w)  # re-published withdrawal (new ce_id): nothing more
    mails = await kit.wait_for_mails(addr, 2)
    withdrawal = mails[-1]
    assert (
        withdrawal.subject
        == "Product safety recall: Withdrawn toaster (your purchase is not affected)"
    )
    assert "no longer affected" in withdrawal.text
    notices = await svc.wait_for_notices(
        alert.alert_id, lambda ns: len(ns) == 2 and all(n["status"] == "sent" for n in ns)
    )
    assert {n["kind"] for n in notices} == {"initial", "withdrawal"}
    await asyncio.sleep(0.5)
    assert len(await kit.mails_to(addr)) == 2


async def test_withdrawal_before_anything_was_sent_cancels_the_notice_silently(svc, kit) -> None:
    cid, addr = kit.new_customer(), kit.new_email()
    alert = kit.alert(cid)
    await svc.publish(kit.raised(alert))  # no contact yet: the notice waits
    await svc.wait_for_notices(
        alert.alert_id, lambda ns: ns and ns[0]["status"] == "waiting_contact"
    )
    await svc.publish(kit.withdrawn(alert))
    await svc.wait_for_notices(alert.alert_id, lambda ns: ns[0]["status"] == "cancelled")
    await svc.publish(kit.customer(cid, email_=addr))
    marker = kit.alert(cid, title="Marker after withdrawal")
    await svc.publish(kit.raised(marker))
    (mail,) = await kit.wait_for_mails(addr, 1)
    assert mail.subject == "Product safety recall: Marker after withdrawal"
    notices = await svc.notices(alert.alert_id)
    assert [n["status"] for n in notices] == ["cancelled"]


async def test_german_customer_gets_a_german_notice(svc, kit) -> None:
    cid, addr = kit.new_customer(), kit.new_email()
    alert = kit.alert(cid, title="Wasserkocher KX-1")
    await svc.publish(kit.customer(cid, email_=addr, name="Jana", locale="de-DE"))
    await svc.publish(kit.raised(alert))
    (mail,) = await kit.wait_for_mails(addr, 1)
    assert mail.subject == "Produktsicherheitsrückruf: Wasserkocher KX-1"
    assert "Guten Tag Jana," in mail.text
    assert "Verwenden Sie dieses Produkt ab sofort nicht mehr." in mail.text


async def test_hostile_title_reaches_the_mailbox_escaped_and_without_injected_headers(
    svc, kit
) -> None:
    cid, addr = kit.new_customer(), kit.new_email()
    alert = kit.alert(cid, title="Kettle <script>alert(1)</script>\r\nBcc: evil@x")
    await svc.publish(kit.customer(cid, email_=addr))
    await svc.publish(kit.raised(alert))
    (mail,) = await kit.wait_for_mails(addr, 1)
    assert mail.rcpt_to == [addr], "no extra envelope recipient"
    assert mail.message["Bcc"] is None
    assert "\n" not in mail.subject
    assert "<script>" not in mail.html and "&lt;script&gt;" in mail.html


async def test_delivered_notice_carries_the_full_content_in_the_customers_language(
    svc, kit
) -> None:
    from recall_shared import events as ev

    cid, addr = kit.new_customer(), kit.new_email()
    base = kit.alert(
        cid,
        title="Acme kettle KX-1 1.7 l stainless steel, white, with a long descriptive product name",
        tier="possibly_affected",
    )
    line = base.lines[0].model_copy(
        update={"tier": "possibly_affected", "unknown_attributes": ["lot", "expiry date"]}
    )
    recall = base.recall.model_copy(
        update={
            "images": ["https://img.example/kx1.jpg"],
            "texts": {
                "de": ev.LocalizedText(
                    title="Acme Wasserkocher KX-1 1,7 l Edelstahl, weiß, mit einem langen "
                    "beschreibenden Produktnamen",
                    hazard="Der Sockel kann überhitzen und Verbrennungen verursachen.",
                    stop_using="Ziehen Sie den Stecker und benutzen Sie den Wasserkocher nicht "
                    "mehr.",
                )
            },
        }
    )
    alert = base.model_copy(update={"lines": [line], "recall": recall})
    await svc.publish(kit.customer(cid, email_=addr, name="Jürgen", locale="de-DE"))
    await svc.publish(kit.raised(alert))
    (mail,) = await kit.wait_for_mails(addr, 1)
    title = recall.texts["de"].title
    assert mail.subject == f"Produktsicherheitsrückruf: {title}"
    raw = await kit.raw_mail(mail.id)
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    (i,) = [n for n, h in enumerate(head) if h.startswith(b"Subject:")]
    assert not head[i + 1][:1].isspace(), "one-line Subject on the wire"
    text, html = mail.text, mail.html
    for body in (text, html):
        assert "Ziehen Sie den Stecker" in body and "Der Sockel kann überhitzen" in body
        assert "Prüfen Sie auf dem Etikett: die Chargennummer, das Verfallsdatum" in body
        assert "GTIN 00012345678905" in body and "Modell KX-1" in body
        assert "gekauft am 14.03.2025, 2 Stück, Bestellung ord-20250314-1" in body
        assert f"{kit.portal}/recalls/{alert.alert_id}" in body
    assert text.index("Verwenden Sie dieses Produkt ab sofort nicht mehr.") < text.index(
        "Der Sockel"
    )
    assert '<img src="https://img.example/kx1.jpg" alt="Foto des zurückgerufenen Produkts: ' in html
    assert (
        mail.message["Message-ID"]
        == f"<{(await svc.notices(alert.alert_id))[0]['notice_id']}@recall-alerts.notices>"
    )
