"""A claim of email notices to customers without an email address is held in one statement and its
fallbacks queued in one more, whatever its size (before: two statements per notice, which held the
first SMS of a batch back by most of a second), each notice still getting the channel the policy
gives it: an SMS for a phone, a letter for a postal address only, none for a phone opted out of
SMS. On a real PostgreSQL through the real handlers and email sender; only the SMTP relay is a
double (no mail goes out: nobody here has an address)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text

from notifier import handlers
from notifier.render import OutgoingMail
from notifier.sender import NoticeSender
from notifier.settings import Settings
from recall_shared import events as ev
from recall_shared.db import create_engine, create_session_factory
from recall_shared.envelope import wrap
from recall_shared.metrics import Metrics
from recall_shared.outbox import Outbox
from recall_shared.testing import migrated_database

pytestmark = pytest.mark.integration

PHONES = 20
ADDRESS = ev.PostalAddress(
    lines=["Hauptstraße 5"], postal_code="10115", city="Berlin", country="DE"
)


class NoMailExpected:
    async def send(self, message: OutgoingMail) -> None:
        raise AssertionError("nobody here has an email address")


async def test_a_claim_without_addresses_is_held_and_falls_back_in_two_statements(
    kit: Any, tmp_path: Path
) -> None:
    async with migrated_database(kit.migrations, prefix="notifier") as url:
        settings = Settings(
            database_url=url,
            environment="test",
            log_json=False,
            log_level="WARNING",
            customer_portal_url=kit.portal,
            letter_dir=str(tmp_path),  # letters are a channel here
        )
        engine = create_engine(settings)
        sessions = create_session_factory(engine)
        contacts = [
            kit.customer(kit.new_customer()).model_copy(update={"phone": f"+49151{i:08d}"})
            for i in range(PHONES)
        ]
        contacts.append(kit.customer("by-post").model_copy(update={"postal_address": ADDRESS}))
        contacts.append(  # reachable on no channel left: no fallback
            kit.customer("opted-out").model_copy(
                update={"phone": "+4915199999999", "sms_opt_out": True}
            )
        )
        async with sessions() as session, session.begin():
            for contact in contacts:
                raised = ev.AlertRaised(alert=kit.alert(contact.customer_id))
                await handlers.HANDLERS[ev.CustomerUpdated](
                    session, contact, wrap(contact, source="/t")
                )
                await handlers.HANDLERS[ev.AlertRaised](session, raised, wrap(raised, source="/t"))
        statements: list[str] = []

        def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            statements.append(statement)

        event.listen(engine.sync_engine, "before_cursor_execute", seen)
        try:
            sender = NoticeSender(
                settings=settings,
                session_factory=sessions,
                outbox=Outbox(source="/tests/notifier", service="notifier"),
                metrics=Metrics("notifier"),
                transport=NoMailExpected(),
                sms_available=True,
            )
            assert await sender.send_due() == len(contacts)
        finally:
            event.remove(engine.sync_engine, "before_cursor_execute", seen)
        async with sessions() as session:
            rows = (
                await session.execute(
                    text(
                        "SELECT recipient_customer_id, channel, status FROM notices "
                        "ORDER BY channel, recipient_customer_id"
                    )
                )
            ).all()
        await engine.dispose()
    holds = [s for s in statements if "SET status = 'waiting_contact'" in s]
    queues = [s for s in statements if "INSERT INTO notices" in s]
    assert (len(holds), len(queues)) == (1, 1), "one statement each for the whole claim"
    email = {r.recipient_customer_id: r.status for r in rows if r.channel == "email"}
    assert set(email.values()) == {"waiting_contact"} and len(email) == len(contacts)
    by_channel = {
        (r.recipient_customer_id, r.channel): r.status for r in rows if r.channel != "email"
    }
    expected = {(c.customer_id, "sms"): "pending" for c in contacts[:PHONES]}
    expected[("by-post", "letter")] = "pending"
    assert by_channel == expected, "an SMS per phone, a letter by post, none for the opted out"
