"""Mail relay failures: a permanent refusal is recorded with a notification.failed.v1 event; a
transient one is retried. The relay is replaced by a test double (only the SMTP relay; Kafka and
PostgreSQL are real)."""

from __future__ import annotations

import asyncio
from email.message import EmailMessage

import pytest

from notifier.smtp_pool import MailError
from recall_shared import events as ev
from recall_shared.testing import eventually
from recall_shared.topics import NOTIFICATIONS

pytestmark = pytest.mark.integration


class RefusingRelay:
    """Answers every message like a relay that rejects the recipient (5xx)."""

    def __init__(self) -> None:
        self.attempts: list[EmailMessage] = []

    async def send(self, message: EmailMessage) -> None:
        self.attempts.append(message)
        raise MailError("SMTP 550: mailbox unavailable", permanent=True)


class FlakyRelay:
    """Fails the first ``failures`` sends transiently (a 4xx / connection error), then accepts."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.attempts: list[EmailMessage] = []
        self.delivered: list[EmailMessage] = []

    async def send(self, message: EmailMessage) -> None:
        self.attempts.append(message)
        if len(self.attempts) <= self.failures:
            raise MailError("SMTP 451: try again later", permanent=False)
        self.delivered.append(message)


async def test_permanent_failure_is_recorded_and_published_once(start_notifier, kit) -> None:
    relay = RefusingRelay()
    async with start_notifier(transport=relay) as svc:
        cid, addr = kit.new_customer(), kit.new_email()
        alert = kit.alert(cid)
        await svc.publish(kit.customer(cid, email_=addr))
        await svc.publish(kit.raised(alert))

        (notice,) = await svc.wait_for_notices(
            alert.alert_id, lambda ns: ns and ns[0]["status"] == "failed"
        )
        assert "550" in notice["last_error"]
        assert notice["sent_at"] is None
        assert notice["attempts"] == 1, "a permanent failure is not retried"

        async def failed_events() -> list:
            return [
                body
                for key, env, body in await kit.read_all(svc.topic(NOTIFICATIONS))
                if key == cid.encode() and env.type == "notification.failed.v1"
            ]

        (event,) = await eventually(failed_events, timeout=15)
        assert event["notice_id"] == notice["notice_id"]
        assert event["alert_id"] == alert.alert_id and event["kind"] == "initial"
        assert event["permanent"] is True and "550" in event["reason"]
        await asyncio.sleep(1.0)  # several sender polls: nothing is retried
        assert len(relay.attempts) == 1
        assert len(await failed_events()) == 1
        sent = [
            1
            for key, env, _ in await kit.read_all(svc.topic(NOTIFICATIONS))
            if env.type == "notification.sent.v1"
        ]
        assert sent == []
        assert relay.attempts[0]["X-Recall-Notice-Id"] == notice["notice_id"]


async def test_transient_failure_is_retried_with_the_same_message_id(start_notifier, kit) -> None:
    relay = FlakyRelay(failures=1)
    async with start_notifier(transport=relay) as svc:
        cid, addr = kit.new_customer(), kit.new_email()
        alert = kit.alert(cid)
        await svc.publish(kit.customer(cid, email_=addr))
        await svc.publish(kit.raised(alert))
        (notice,) = await svc.wait_for_notices(
            alert.alert_id, lambda ns: ns and ns[0]["status"] == "sent", timeout=20
        )
        assert notice["attempts"] == 2
        assert len(relay.delivered) == 1
        assert relay.attempts[0]["Message-ID"] == relay.attempts[1]["Message-ID"]


class RefusingOne:
    """Accepts every message but those to ``address``, which it refuses for good (5xx)."""

    def __init__(self, address: str) -> None:
        self.address = address

    async def send(self, message: EmailMessage) -> None:
        if message["To"] and self.address in message["To"]:
            raise MailError("SMTP 550: mailbox unavailable", permanent=True)


async def test_a_refused_mail_to_a_gifts_recipient_is_reported_as_theirs(
    start_notifier, kit
) -> None:
    """The failure is published on the purchaser's behalf and says it was the gift recipient's
    (customer-api shows it so on the purchaser's alert, not as a mail of theirs that bounced)."""

    buyer, gil_email = kit.new_customer(), kit.new_email("gil")
    async with start_notifier(transport=RefusingOne(gil_email)) as svc:
        await svc.publish(kit.customer(buyer, email_=kit.new_email()))
        alert = kit.alert(buyer)
        recipient = ev.GiftRecipient(name="Gil", email=gil_email)
        gift = alert.lines[0].model_copy(update={"is_gift": True, "gift_recipient": recipient})
        alert = alert.model_copy(update={"lines": [gift]})
        await svc.publish(kit.raised(alert))
        await svc.wait_for_notices(
            alert.alert_id, lambda ns: sorted(n["status"] for n in ns) == ["failed", "sent"]
        )

        async def outcomes() -> dict | None:
            got = {
                env.type: body
                for key, env, body in await kit.read_all(svc.topic(NOTIFICATIONS))
                if key == buyer.encode()
            }
            return got if len(got) == 2 else None

        got = await eventually(outcomes, timeout=15)
        assert got["notification.failed.v1"]["gift_recipient"] is True
        assert got["notification.sent.v1"]["gift_recipient"] is False
