"""Reach in the seller's report and the CPSC export: "notified" means the notice reached the
customer, so a bounced notice is not counted (notification.bounced.v1), a confirmed delivery is
(notification.delivered.v1), and a late report never turns a bounce back into "notified"."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from recall_shared import events as ev
from recall_shared.testing import eventually

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]


async def test_bounced_notices_are_not_counted_as_notified(rls: Any, kit: Any) -> None:
    rc = kit.recall()
    await rls.publish(kit.published(rc))
    now = datetime.now(UTC)
    customers = [kit.new_customer() for _ in range(5)]
    alerts = [kit.alert(rc, c, lines=[(1, "19.99")]) for c in customers]
    for a in alerts:
        await rls.publish(kit.raised(a))
    commons = [
        {
            "notice_id": str(uuid.uuid4()),
            "alert_id": a.alert_id,
            "customer_id": a.customer_id,
            "recall_id": rc.recall_id,
            "kind": "initial",
            "alert_version": 1,
        }
        for a in alerts
    ]
    delivered, bounced, sent_only, failed, complained_late = commons
    for c in (delivered, bounced, sent_only, complained_late):
        await rls.publish(ev.NoticeSent(**c, recipient_role="purchaser", sent_at=now))
    await rls.publish(
        ev.NoticeFailed(**failed, reason="550 no such user", permanent=True, failed_at=now)
    )
    await rls.publish(ev.NoticeDelivered(**delivered, source="mailgun", delivered_at=now))
    await rls.publish(
        ev.NoticeBounced(
            **bounced, bounce_type="hard", status="5.1.1", source="dsn", bounced_at=now
        )
    )
    # Bounced, then a (late, contradictory) delivered: the bounce stands; then a complaint,
    # which proves it arrived after all.
    await rls.publish(
        ev.NoticeBounced(
            **complained_late, bounce_type="soft", status="4.2.2", source="dsn", bounced_at=now
        )
    )
    await rls.publish(ev.NoticeDelivered(**complained_late, source="dsn", delivered_at=now))
    await rls.publish(ev.NoticeComplained(**complained_late, source="arf", complained_at=now))
    # A sixth customer, reached by SMS after their email bounced: their delivered report came
    # before the SMS's own sent event (a fast provider), and still counts.
    texted = kit.new_customer()
    a6 = kit.alert(rc, texted, lines=[(1, "19.99")])
    await rls.publish(kit.raised(a6))
    email6 = {
        **commons[0],
        "notice_id": str(uuid.uuid4()),
        "alert_id": a6.alert_id,
        "customer_id": texted,
    }
    sms6 = {**email6, "notice_id": str(uuid.uuid4())}
    await rls.publish(ev.NoticeSent(**email6, recipient_role="purchaser", sent_at=now))
    await rls.publish(
        ev.NoticeBounced(**email6, bounce_type="hard", source="mailgun", bounced_at=now)
    )
    await rls.publish(ev.NoticeDelivered(**sms6, channel="sms", source="twilio", delivered_at=now))
    await rls.publish(ev.NoticeSmsSent(**sms6, recipient_role="purchaser", sent_at=now))
    key, _ = await rls.issue_key("seller", rc.seller_id)
    seller = {"X-Api-Key": key}
    period = f"{now.year:04d}-{now.month:02d}"

    async def settled() -> dict:
        rep = (
            await rls.client.get(
                f"/v1/recalls/{rc.recall_id}/report?period={period}", headers=seller
            )
        ).json()
        return rep if rep["customers_delivered"] == 3 and rep["customers_bounced"] == 1 else {}

    rep = await eventually(settled, timeout=15, interval=0.2)
    assert rep["customers_attempted"] == 6
    assert rep["customers_not_reached"] == 2, "the bounced one and the failed one"
    assert rep["customers_notified"] == 4, "delivered, sent without a bounce, complained, texted"
    assert rep["customers_notified_period"] == 4 and rep["customers_delivered_period"] == 3
    assert rep["notices_sent_period"] == 6
    assert rep["notices_by_channel"] == {
        "email": {
            "customers_attempted": 6,
            "customers_notified": 3,
            "customers_delivered": 2,
            "customers_bounced": 2,
            "customers_failed_only": 1,
        },
        "sms": {
            "customers_attempted": 1,
            "customers_notified": 1,
            "customers_delivered": 1,
            "customers_bounced": 0,
            "customers_failed_only": 0,
        },
    }
    csv_resp = await rls.client.get(
        f"/v1/recalls/{rc.recall_id}/report/cpsc-monthly?period={period}&format=csv", headers=seller
    )
    (row,) = list(csv.DictReader(io.StringIO(csv_resp.text)))
    assert (
        row["customers_notified_direct_to_date"],
        row["customers_notice_delivered_to_date"],
        row["customers_notice_bounced_to_date"],
    ) == ("4", "3", "1")
    assert row["customers_notice_failed_to_date"] == "1", "the failed one"
    assert row["customers_contacted_by_channel"] == "email=3; sms=1"


async def test_a_letter_counts_as_notified_on_its_own_channel(rls: Any, kit: Any) -> None:
    """A customer no digital channel reached, told by post (notification.letter_sent.v1)."""
    rc = kit.recall()
    await rls.publish(kit.published(rc))
    now = datetime.now(UTC)
    posted = kit.new_customer()
    alert = kit.alert(rc, posted, lines=[(1, "19.99")])
    await rls.publish(kit.raised(alert))
    common = {
        "alert_id": alert.alert_id,
        "customer_id": posted,
        "recall_id": rc.recall_id,
        "kind": "initial",
        "alert_version": 1,
    }
    await rls.publish(
        ev.NoticeFailed(
            **common,
            notice_id=str(uuid.uuid4()),
            reason="no address",
            permanent=True,
            failed_at=now,
        )
    )
    await rls.publish(
        ev.NoticeLetterSent(
            **common,
            notice_id=str(uuid.uuid4()),
            recipient_role="purchaser",
            batch_id="letters-20261201T050000Z",
            sent_at=now,
        )
    )
    key, _ = await rls.issue_key("seller", rc.seller_id)
    period = f"{now.year:04d}-{now.month:02d}"

    async def settled() -> dict:
        rep = (
            await rls.client.get(
                f"/v1/recalls/{rc.recall_id}/report?period={period}", headers={"X-Api-Key": key}
            )
        ).json()
        return rep if rep["customers_notified"] == 1 else {}

    rep = await eventually(settled, timeout=15, interval=0.2)
    assert rep["customers_not_reached"] == 0
    assert rep["notices_by_channel"]["letter"] == {
        "customers_attempted": 1,
        "customers_notified": 1,
        "customers_delivered": 0,
        "customers_bounced": 0,
        "customers_failed_only": 0,
    }


async def test_a_returned_letter_is_not_counted_as_notified(rls: Any, kit: Any) -> None:
    """The mail house sent the letter back (notification.letter_returned.v1): a bounce by post."""
    rc = kit.recall()
    await rls.publish(kit.published(rc))
    now = datetime.now(UTC)
    moved = kit.new_customer()
    alert = kit.alert(rc, moved, lines=[(1, "19.99")])
    await rls.publish(kit.raised(alert))
    common = {
        "notice_id": str(uuid.uuid4()),
        "alert_id": alert.alert_id,
        "customer_id": moved,
        "recall_id": rc.recall_id,
        "kind": "initial",
        "alert_version": 1,
    }
    await rls.publish(
        ev.NoticeLetterSent(
            **common, recipient_role="purchaser", batch_id="letters-20261201T050000Z", sent_at=now
        )
    )
    await rls.publish(
        ev.NoticeLetterReturned(
            **common,
            letter_id="letters-20261201T050000Z-000001",
            reason="moved away",
            returned_at=now,
        )
    )
    key, _ = await rls.issue_key("seller", rc.seller_id)
    period = f"{now.year:04d}-{now.month:02d}"

    async def settled() -> dict:
        rep = (
            await rls.client.get(
                f"/v1/recalls/{rc.recall_id}/report?period={period}", headers={"X-Api-Key": key}
            )
        ).json()
        return rep if rep["notices_by_channel"].get("letter", {}).get("customers_bounced") else {}

    rep = await eventually(settled, timeout=15, interval=0.2)
    assert rep["customers_notified"] == 0
    assert rep["notices_by_channel"]["letter"]["customers_notified"] == 0
