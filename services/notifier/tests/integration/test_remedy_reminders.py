"""Reminders until the remedy is complete (issue 14), on the injectable clock: a case waiting for
the photo or the returned item reminds the customer 7 and 21 days after the wait began; a photo
under review pauses them, a rejected one starts them again; the refund, a withdrawal or a closed
alert stops them. Real Kafka, PostgreSQL and SMTP sink."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from notifier.clock import FakeClock
from recall_shared import events as ev
from recall_shared.testing import eventually

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

CLOCK = FakeClock(datetime(2026, 5, 4, 9, 0, tzinfo=UTC))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def rsvc(start_notifier) -> AsyncIterator:
    async with start_notifier(clock=CLOCK, reminder_poll_s=3600) as n:
        yield n


async def tick(svc) -> int:
    return await svc.app.state.reminders.tick()


async def schedule(svc, case_id: str) -> dict | None:
    engine = create_async_engine(svc.settings.database_url)
    try:
        async with engine.connect() as conn:
            row = (
                await conn.execute(
                    text("SELECT * FROM case_reminders WHERE case_id = :c"), {"c": case_id}
                )
            ).first()
    finally:
        await engine.dispose()
    return dict(row._mapping) if row is not None else None


async def notified(svc, kit, locale: str = "en"):
    cid, addr = kit.new_customer(), kit.new_email()
    alert = kit.alert(
        cid,
        title=f"Remedy kettle {uuid.uuid4().hex[:6]}",
        remedies=("refund_on_destruction", "refund_with_return"),
    )
    await svc.publish(kit.customer(cid, email_=addr, locale=locale))
    await svc.publish(kit.raised(alert))
    await svc.wait_for_notices(alert.alert_id, lambda ns: ns and ns[0]["status"] == "sent")
    return alert, addr


def case_event(alert: ev.AlertState, case_id: str, transition: str, state: str, **kw: object):
    return ev.RemedyCaseTransitioned(
        case_id=case_id,
        request_id=case_id,
        alert_id=alert.alert_id,
        customer_id=alert.customer_id,
        recall_id=alert.recall_id,
        seller_id="seller-1",
        remedy=kw.pop("remedy", "refund_on_destruction"),
        transition=transition,
        from_state=kw.pop("from_state", None),
        state=state,
        occurred_at=CLOCK.now(),
        **kw,
    )


def review_step(alert: ev.AlertState, case_id: str, step: str, attempt: int, waiting_for: str):
    return ev.RemedyCaseProgressed(
        case_id=case_id,
        request_id=case_id,
        alert_id=alert.alert_id,
        customer_id=alert.customer_id,
        recall_id=alert.recall_id,
        remedy="refund_on_destruction",
        step=step,
        attempt=attempt,
        state="requested",
        waiting_for=waiting_for,
        occurred_at=CLOCK.now(),
    )


async def until(svc, case_id: str, check) -> dict:
    async def ready() -> dict | None:
        row = await schedule(svc, case_id)
        return row if row is not None and check(row) else None

    return await eventually(ready, timeout=15, interval=0.1)


async def remedy_reminders_sent(svc, alert_id: str, count: int) -> list[dict]:
    notices = await svc.wait_for_notices(
        alert_id,
        lambda ns: (
            len([n for n in ns if n["reminder_no"] > 100 and n["status"] == "sent"]) == count
        ),
    )
    return [n for n in notices if n["reminder_no"] > 100]


async def test_a_missing_photo_is_reminded_paused_by_review_restarted_by_rejection_and_stopped_by_the_refund(  # noqa: E501
    rsvc, kit
) -> None:
    alert, addr = await notified(rsvc, kit)
    case_id = str(uuid.uuid4())
    start = CLOCK.now()
    await rsvc.publish(case_event(alert, case_id, "open", "requested", waiting_for="proof"))
    await until(rsvc, case_id, lambda r: r["wait"] == "proof")
    assert await tick(rsvc) == 0  # sets the first date
    CLOCK.set(start + timedelta(days=7) - timedelta(minutes=1))
    assert await tick(rsvc) == 0
    CLOCK.set(start + timedelta(days=7))
    assert await tick(rsvc) == 1
    assert await tick(rsvc) == 0, "a repeated tick queues nothing twice"
    (first,) = await remedy_reminders_sent(rsvc, alert.alert_id, 1)
    assert first["reminder_no"] == 101
    mails = await kit.wait_for_mails(addr, 2)
    assert mails[-1].subject.endswith("(reminder)")
    assert "we have not received your photo of the destroyed product" in mails[-1].text
    assert "See what is still needed on your recalls page" in mails[-1].text

    CLOCK.advance(days=1)
    await rsvc.publish(review_step(alert, case_id, "proof_under_review", 1, "review"))
    await until(rsvc, case_id, lambda r: r["wait"] is None and r["next_due_at"] is None)
    CLOCK.set(start + timedelta(days=40))
    assert await tick(rsvc) == 0, "paused while the photo is reviewed"

    rejected_at = CLOCK.now()
    await rsvc.publish(review_step(alert, case_id, "proof_rejected", 1, "proof"))
    await until(rsvc, case_id, lambda r: r["wait"] == "proof")
    assert await tick(rsvc) == 0
    CLOCK.set(rejected_at + timedelta(days=7))
    assert await tick(rsvc) == 1, "a new wait: the schedule starts again"
    reminders = await remedy_reminders_sent(rsvc, alert.alert_id, 2)
    assert sorted(n["reminder_no"] for n in reminders) == [101, 102]

    await rsvc.publish(
        case_event(
            alert,
            case_id,
            "issue_refund",
            "refunded",
            from_state="requested",
            refunded_amount="39.98",
            currency="EUR",
        )
    )
    await until(rsvc, case_id, lambda r: r["stopped_reason"] == "refunded")
    CLOCK.set(rejected_at + timedelta(days=60))
    assert await tick(rsvc) == 0, "the refund completes the remedy: no more reminders"


async def test_an_unused_label_then_an_item_not_received_and_a_withdrawal_stops_them(
    rsvc, kit
) -> None:
    alert, addr = await notified(rsvc, kit, locale="de")
    case_id = str(uuid.uuid4())
    start = CLOCK.now()
    await rsvc.publish(case_event(alert, case_id, "open", "requested", remedy="refund_with_return"))
    await rsvc.publish(
        case_event(
            alert,
            case_id,
            "issue_label",
            "label_issued",
            remedy="refund_with_return",
            from_state="requested",
            waiting_for="item",
        )
    )
    await until(rsvc, case_id, lambda r: r["wait"] == "item")
    assert await tick(rsvc) == 0
    CLOCK.set(start + timedelta(days=7))
    assert await tick(rsvc) == 1
    CLOCK.set(start + timedelta(days=21))
    assert await tick(rsvc) == 1
    reminders = await remedy_reminders_sent(rsvc, alert.alert_id, 2)
    assert sorted(n["reminder_no"] for n in reminders) == [201, 202]
    mails = await kit.wait_for_mails(addr, 3)
    assert "Ihr frankiertes Rücksendeetikett liegt bereit" in mails[1].text
    assert "ist noch nicht bei uns angekommen" in mails[2].text

    await rsvc.publish(kit.withdrawn(alert))
    await until(rsvc, case_id, lambda r: r["stopped_reason"] == "withdrawn")
    # A later case event does not start a withdrawn alert's reminders again.
    await rsvc.publish(
        case_event(
            alert,
            case_id,
            "issue_label",
            "label_issued",
            remedy="refund_with_return",
            from_state="requested",
            waiting_for="item",
            reason="again",
        )
    )
    CLOCK.set(start + timedelta(days=90))
    assert await tick(rsvc) == 0


async def test_a_closed_alert_and_not_affected_stop_a_cases_reminders(rsvc, kit) -> None:
    for how in ("closed", "not_affected"):
        alert, _ = await notified(rsvc, kit)
        case_id = str(uuid.uuid4())
        start = CLOCK.now()
        await rsvc.publish(case_event(alert, case_id, "open", "requested", waiting_for="proof"))
        await until(rsvc, case_id, lambda r: r["wait"] == "proof")
        if how == "closed":
            await rsvc.publish(
                ev.AlertClosed(
                    alert_id=alert.alert_id,
                    customer_id=alert.customer_id,
                    recall_id=alert.recall_id,
                    closed_at=CLOCK.now(),
                )
            )
        else:
            await rsvc.publish(
                ev.NotAffectedDeclared(
                    alert_id=alert.alert_id,
                    customer_id=alert.customer_id,
                    recall_id=alert.recall_id,
                    declared_at=CLOCK.now(),
                    reason="lot 999, not in the recall",
                )
            )
        await until(rsvc, case_id, lambda r, how=how: r["stopped_reason"] == how)
        CLOCK.set(start + timedelta(days=30))
        assert await tick(rsvc) == 0, how
