"""Material amendments re-notify (issue 14): an alert.updated.v1 of the version held whose recall
was amended materially (severity raised, stop-using changed, a remedy added or removed) sends an
"amendment" notice to the customers already alerted, once per amendment, announced as an update on
notifications.v1; a wording edit sends nothing; a customer who said their unit is not affected is
not told. Real Kafka, PostgreSQL and SMTP sink."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from recall_shared import events as ev
from recall_shared.testing import eventually
from recall_shared.topics import NOTIFICATIONS

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]


def amended(alert: ev.AlertState, recall_version: int, **content: Any) -> ev.AlertUpdated:
    """The matcher's update after a recall amendment: the same lines and version, new content."""
    recall = alert.recall.model_copy(update=content)
    return ev.AlertUpdated(
        alert=alert.model_copy(update={"recall_version": recall_version, "recall": recall})
    )


async def told(svc: Any, kit: Any) -> tuple[ev.AlertState, str]:
    cid, addr = kit.new_customer(), kit.new_email()
    alert = kit.alert(cid, title=f"Amended kettle {uuid.uuid4().hex[:6]}")
    await svc.publish(kit.customer(cid, email_=addr))
    await svc.publish(kit.raised(alert))
    await kit.wait_for_mails(addr, 1)
    return alert, addr


async def test_material_amendments_are_told_once_each_and_wording_edits_not_at_all(
    svc: Any, kit: Any
) -> None:
    alert, addr = await told(svc, kit)
    title = alert.recall.title
    raised_severity = amended(alert, 2, severity="critical")
    await svc.publish(raised_severity)
    await svc.publish(raised_severity)  # redelivered: the same amendment, nothing more
    await svc.publish(amended(alert, 3, severity="critical", hazard="Reworded: it can burn you."))
    await svc.publish(
        amended(
            alert,
            4,
            severity="critical",
            hazard="Reworded: it can burn you.",
            remedies=[ev.Remedy(type="refund_with_return")],
        )
    )
    mails = await kit.wait_for_mails(addr, 3)
    assert [m.subject for m in mails] == [
        f"Product safety recall: {title}",
        f"Product safety recall: {title} (important change)",
        f"Product safety recall: {title} (important change)",
    ]
    assert "has changed in a way that matters for your safety" in mails[1].text
    assert "A full refund of the price you paid, with a prepaid return label" in mails[2].text
    assert "A free replacement" not in mails[2].text  # removed: what applies now

    notices = await svc.wait_for_notices(
        alert.alert_id, lambda ns: len([n for n in ns if n["status"] == "sent"]) == 3
    )
    amendments = sorted(n["reminder_no"] for n in notices if n["kind"] == "amendment")
    assert amendments == [2, 4], "one per material amendment, numbered by its recall version"

    async def sent_events() -> list[dict] | None:
        got = [
            body
            for _, env, body in await kit.read_all(svc.topic(NOTIFICATIONS))
            if env.type == "notification.sent.v1" and body["alert_id"] == alert.alert_id
        ]
        return got if len(got) == 3 else None

    events = await eventually(sent_events, timeout=15, interval=0.2)
    assert sorted(e["kind"] for e in events) == ["initial", "update", "update"]
    await asyncio.sleep(0.5)
    assert len(await kit.mails_to(addr)) == 3


async def test_a_customer_who_is_not_affected_is_not_told_of_an_amendment(
    svc: Any, kit: Any
) -> None:
    alert, addr = await told(svc, kit)
    await svc.publish(
        ev.NotAffectedDeclared(
            alert_id=alert.alert_id,
            customer_id=alert.customer_id,
            recall_id=alert.recall_id,
            declared_at=datetime.now(UTC),
        )
    )
    await svc.publish(amended(alert, 2, severity="critical"))
    # A marker after both on the same partition: once it is told, the amendment was handled.
    other = kit.alert(alert.customer_id, title="Marker kettle")
    await svc.publish(kit.raised(other))
    await svc.wait_for_notices(other.alert_id, lambda ns: ns and ns[0]["status"] == "sent")
    notices = await svc.notices(alert.alert_id)
    assert [n["kind"] for n in notices] == ["initial"]
    assert [m.subject for m in await kit.wait_for_mails(addr, 2)] == [
        f"Product safety recall: {alert.recall.title}",
        "Product safety recall: Marker kettle",
    ]
