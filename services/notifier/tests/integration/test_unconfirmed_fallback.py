"""The fall back after N days, on the service's clock: an email nothing confirmed is followed by an
SMS once the severity's days have passed (high: three), not before, and only once; a delivered
email, a customer who answered or one who opened the alert page is not followed up."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
import pytest_asyncio

from notifier.clock import FakeClock
from notifier.webhook import mailgun_signature
from recall_shared import events as ev
from recall_shared.db import asyncpg_dsn
from recall_shared.testing import eventually

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

MAILGUN_KEY = "key-" + "5" * 32
PHONE = "+4915112345678"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def later(start_notifier: Any, twilio_sandbox: Any) -> AsyncIterator[Any]:
    clock = FakeClock(datetime(2026, 12, 1, 9, 0, tzinfo=UTC))
    async with (
        twilio_sandbox() as (sandbox, via_sandbox),
        start_notifier(
            clock=clock,
            **via_sandbox,
            mailgun_webhook_signing_key=MAILGUN_KEY,
            fallback_when_unconfirmed=True,
            unconfirmed_poll_s=3600,  # the test runs the follow-up itself, after moving the clock
        ) as n,
    ):

        async def callback(url: str, data: dict[str, str], headers: dict[str, str]) -> None:
            await n.client.post(url, data=data, headers=headers)

        sandbox.callback = callback  # the SMS is reported delivered, as Twilio would
        n.clock = clock
        yield n


def channels(notices: list[dict]) -> list[str]:
    return sorted(n["channel"] for n in notices)


async def sent_email(later: Any, kit: Any) -> tuple[ev.AlertState, dict]:
    cid = kit.new_customer()
    await later.publish(
        kit.customer(cid, email_=kit.new_email()).model_copy(update={"phone": PHONE})
    )
    alert = kit.alert(cid)
    await later.publish(kit.raised(alert))
    (email,) = await later.wait_for_notices(
        alert.alert_id, lambda ns: len(ns) == 1 and ns[0]["status"] == "sent"
    )
    return alert, email


async def delivered(later: Any, notice_id: str) -> None:
    ts, token = str(int(later.clock.now().timestamp())), uuid.uuid4().hex
    body = {
        "signature": {
            "timestamp": ts,
            "token": token,
            "signature": mailgun_signature(MAILGUN_KEY, ts, token),
        },
        "event-data": {
            "event": "delivered",
            "message": {"headers": {"message-id": f"{notice_id}@recall-alerts.notices"}},
            "delivery-status": {"code": 250, "message": "OK"},
        },
    }
    r = await later.client.post("/v1/webhooks/mailgun", json=body)
    assert r.json() == {"recorded": True}, r.text


async def test_an_unconfirmed_email_is_followed_by_an_sms_after_the_policys_days(
    later: Any, kit: Any
) -> None:
    follow_up = later.app.state.unconfirmed.follow_up
    unconfirmed, _ = await sent_email(later, kit)
    confirmed, email = await sent_email(later, kit)
    await delivered(later, email["notice_id"])
    answered, _ = await sent_email(later, kit)
    await later.publish(
        ev.RemedyRequested(
            request_id=str(uuid.uuid4()),
            alert_id=answered.alert_id,
            customer_id=answered.customer_id,
            recall_id=answered.recall_id,
            remedy="replacement",
            requested_at=later.clock.now(),
        )
    )
    await later.wait_for_notices(confirmed.alert_id, lambda ns: ns[0]["delivery"] == "delivered")

    async def answer_recorded() -> bool:
        r = await later.client.get(f"/v1/alerts/{answered.alert_id}/reminders")
        return [x["stopped_reason"] for x in r.json()] == ["remedy_requested"]

    await eventually(answer_recorded, timeout=15)

    later.clock.advance(days=2, hours=23)  # high severity: three days
    await follow_up()
    assert channels(await later.notices(unconfirmed.alert_id)) == ["email"], "not yet"

    later.clock.advance(hours=1)
    await follow_up()
    notices = await later.wait_for_notices(
        unconfirmed.alert_id,
        lambda ns: any(n["channel"] == "sms" and n["delivery"] == "delivered" for n in ns),
    )
    assert channels(notices) == ["email", "sms"]
    for alert in (confirmed, answered):
        assert channels(await later.notices(alert.alert_id)) == ["email"], alert.customer_id

    later.clock.advance(days=30)
    await follow_up()
    assert channels(await later.notices(unconfirmed.alert_id)) == ["email", "sms"], (
        "never more than the policy allows: the SMS was delivered, and one per channel"
    )


def viewed(alert: ev.AlertState) -> ev.AlertViewed:
    """The customer opened the alert page, as customer-api tells it."""
    return ev.AlertViewed(
        alert_id=alert.alert_id,
        customer_id=alert.customer_id,
        recall_id=alert.recall_id,
        alert_version=alert.alert_version,
        viewed_at=datetime.now(UTC),
    )


async def views_recorded(later: Any, alerts: list[ev.AlertState]) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(later.settings.database_url))
    try:

        async def all_there() -> bool:
            n = await conn.fetchval(
                "SELECT count(*) FROM alert_views WHERE alert_id = ANY($1::text[])",
                [a.alert_id for a in alerts],
            )
            return n == len(alerts)

        await eventually(all_there, timeout=15)
    finally:
        await conn.close()


async def test_an_opened_alert_is_not_followed_up_while_an_unopened_one_is(
    later: Any, kit: Any
) -> None:
    follow_up = later.app.state.unconfirmed.follow_up
    opened, _ = await sent_email(later, kit)
    opened_late, _ = await sent_email(later, kit)
    unopened, _ = await sent_email(later, kit)
    await later.publish(viewed(opened))

    later.clock.advance(days=3, hours=1)  # high severity: three days, passed
    await later.publish(viewed(opened_late))  # after the days, before the fall back looked
    await views_recorded(later, [opened, opened_late])
    await follow_up()
    notices = await later.wait_for_notices(
        unopened.alert_id, lambda ns: any(n["channel"] == "sms" for n in ns)
    )
    assert channels(notices) == ["email", "sms"]
    for alert in (opened, opened_late):
        assert channels(await later.notices(alert.alert_id)) == ["email"], alert.customer_id
