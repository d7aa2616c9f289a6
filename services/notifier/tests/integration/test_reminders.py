"""Reminders on a schedule (7 and 30 days after the initial notice by default), moved by a fake
clock; stopped by a remedy request, a 'not affected' answer, a withdrawal. Real Kafka, PostgreSQL
and SMTP sink."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio

from notifier.clock import FakeClock
from recall_shared import events as ev

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

CLOCK = FakeClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def rsvc(start_notifier) -> AsyncIterator:
    # The background scheduler is slowed down: each test ticks it itself, right after moving the
    # clock.
    async with start_notifier(clock=CLOCK, reminder_poll_s=3600) as n:
        yield n


async def tick(svc) -> int:
    return await svc.app.state.reminders.tick()


async def notified(svc, kit, *, locale: str = "en"):
    """A customer with one recall notice sent; returns (alert, address, time the notice was
    sent)."""
    cid, addr = kit.new_customer(), kit.new_email()
    alert = kit.alert(cid, title=f"Reminder heater {uuid.uuid4().hex[:6]}")
    await svc.publish(kit.customer(cid, email_=addr, locale=locale))
    await svc.publish(kit.raised(alert))
    await svc.wait_for_notices(alert.alert_id, lambda ns: ns and ns[0]["status"] == "sent")
    (schedule,) = (await svc.client.get(f"/v1/alerts/{alert.alert_id}/reminders")).json()
    base = datetime.fromisoformat(schedule["base_at"])
    assert base == CLOCK.now(), (
        "the schedule starts when the initial notice was sent, by the injected clock"
    )
    assert datetime.fromisoformat(schedule["next_due_at"]) == base + timedelta(days=7)
    return alert, addr, base


async def schedule_of(svc, alert_id: str) -> dict:
    (s,) = (await svc.client.get(f"/v1/alerts/{alert_id}/reminders")).json()
    return s


async def test_reminders_after_7_and_30_days_and_not_before(rsvc, kit) -> None:
    alert, addr, base = await notified(rsvc, kit)

    CLOCK.set(base + timedelta(days=7) - timedelta(minutes=1))
    assert await tick(rsvc) == 0
    CLOCK.set(base + timedelta(days=7))
    assert await tick(rsvc) == 1
    assert await tick(rsvc) == 0, "a repeated tick queues nothing twice"
    await rsvc.wait_for_notices(
        alert.alert_id, lambda ns: len(ns) == 2 and ns[-1]["status"] == "sent"
    )

    CLOCK.set(base + timedelta(days=29, hours=23))
    assert await tick(rsvc) == 0
    CLOCK.set(base + timedelta(days=30))
    assert await tick(rsvc) == 1
    CLOCK.set(base + timedelta(days=400))
    assert await tick(rsvc) == 0, "the schedule has two reminders"

    notices = await rsvc.wait_for_notices(
        alert.alert_id, lambda ns: len(ns) == 3 and all(n["status"] == "sent" for n in ns)
    )
    assert sorted((n["kind"], n["reminder_no"]) for n in notices) == [
        ("initial", 0),
        ("reminder", 1),
        ("reminder", 2),
    ]
    assert (await schedule_of(rsvc, alert.alert_id))["stopped_reason"] == "schedule complete"
    initial, first, second = await kit.wait_for_mails(addr, 3)
    assert (
        first.subject == second.subject == f"Product safety recall: {alert.recall.title} (reminder)"
    )
    assert "You have not yet told us what you want to do" in first.text
    assert f"{kit.portal}/recalls/{alert.alert_id}" in first.text
    assert len({m.message["Message-ID"] for m in (initial, first, second)}) == 3


async def test_after_downtime_only_the_latest_due_reminder_is_sent(rsvc, kit) -> None:
    alert, addr, base = await notified(rsvc, kit, locale="de")
    CLOCK.set(base + timedelta(days=45))  # both due dates passed while nothing ran
    assert await tick(rsvc) == 1
    notices = await rsvc.wait_for_notices(
        alert.alert_id, lambda ns: len(ns) == 2 and ns[-1]["status"] == "sent"
    )
    assert [(n["kind"], n["reminder_no"]) for n in notices] == [("initial", 0), ("reminder", 2)]
    mails = await kit.wait_for_mails(addr, 2)
    assert mails[-1].subject.endswith("(Erinnerung)")


@pytest.mark.parametrize("answer", ["remedy", "not_affected", "remedy_case"])
async def test_a_customer_response_stops_the_reminders(rsvc, kit, answer: str) -> None:
    alert, _addr, base = await notified(rsvc, kit)
    now = CLOCK.now()
    common = {
        "alert_id": alert.alert_id,
        "customer_id": alert.customer_id,
        "recall_id": alert.recall_id,
    }
    if answer == "remedy":
        event: ev.Event = ev.RemedyRequested(
            request_id=str(uuid.uuid4()), remedy="replacement", requested_at=now, **common
        )
    elif answer == "not_affected":
        event = ev.NotAffectedDeclared(
            declared_at=now, reason="lot 17 is not in the list", **common
        )
    else:
        event = ev.RemedyCaseTransitioned(
            case_id="case-1",
            request_id="rq-1",
            seller_id="s",
            remedy="repair",
            transition="open",
            from_state=None,
            state="requested",
            occurred_at=now,
            **common,
        )
    await rsvc.publish(event)
    expected = {
        "remedy": "remedy_requested",
        "not_affected": "not_affected",
        "remedy_case": "remedy_case",
    }[answer]

    async def stopped() -> bool:
        return (await schedule_of(rsvc, alert.alert_id))["stopped_reason"] == expected

    from recall_shared.testing import eventually

    await eventually(stopped, timeout=15)
    CLOCK.set(base + timedelta(days=31))
    assert await tick(rsvc) == 0
    assert [n["kind"] for n in await rsvc.notices(alert.alert_id)] == ["initial"]


async def test_a_response_before_the_alert_arrives_still_stops_the_reminders(rsvc, kit) -> None:
    cid, addr = kit.new_customer(), kit.new_email()
    alert = kit.alert(cid)
    await rsvc.publish(
        ev.NotAffectedDeclared(
            alert_id=alert.alert_id,
            customer_id=cid,
            recall_id=alert.recall_id,
            declared_at=CLOCK.now(),
        )
    )
    await rsvc.publish(kit.customer(cid, email_=addr))
    await rsvc.publish(kit.raised(alert))
    await rsvc.wait_for_notices(alert.alert_id, lambda ns: ns and ns[0]["status"] == "sent")
    CLOCK.advance(days=8)
    assert await tick(rsvc) == 0
    assert (await schedule_of(rsvc, alert.alert_id))["stopped_reason"] == "not_affected"


async def test_withdrawal_stops_the_reminders(rsvc, kit) -> None:
    alert, _addr, base = await notified(rsvc, kit)
    await rsvc.publish(kit.withdrawn(alert))
    await rsvc.wait_for_notices(
        alert.alert_id, lambda ns: len(ns) == 2 and ns[-1]["status"] == "sent"
    )  # the withdrawal
    assert (await schedule_of(rsvc, alert.alert_id))["stopped_reason"] == "withdrawn"
    CLOCK.set(base + timedelta(days=31))
    assert await tick(rsvc) == 0
    assert sorted(n["kind"] for n in await rsvc.notices(alert.alert_id)) == [
        "initial",
        "withdrawal",
    ]
