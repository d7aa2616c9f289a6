"""The customer's alerts as fed by alerts.v1 and notifications.v1."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from recall_shared import events as ev
from recall_shared.testing import eventually

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]


async def test_raised_alert_shows_in_full_with_the_customers_purchase(
    api, events, customer_id
) -> None:
    alert = events.alert(customer_id, severity="critical", units=3, tier="possibly_affected")
    await api.publish(events.raised(alert))
    body = await api.wait_for_alert(customer_id, alert.alert_id)
    assert body["status"] == "open"
    assert body["resolution"] is None
    assert body["recall_id"] == alert.recall_id
    assert body["severity"] == "critical"
    assert body["tier"] == "possibly_affected"
    assert body["title"] == alert.recall.title
    assert body["hazard"] == alert.recall.hazard
    assert body["stop_using"] == alert.recall.stop_using
    assert body["units"] == 3
    assert [r["type"] for r in body["remedies"]] == ["refund_on_destruction", "replacement"]
    assert body["consumer_contact"] == "recalls@acme.example"
    assert body["lines"][0]["line_id"] == alert.lines[0].line_id
    assert body["acknowledged"] is False
    assert body["notices"] == [] and body["remedy"] is None


async def test_alert_updated_with_a_higher_version_replaces_the_state_and_an_older_one_does_not(
    api, events, customer_id
) -> None:
    v1 = events.alert(customer_id, units=1)
    await api.raise_alert(v1)
    v2 = v1.model_copy(
        update={"alert_version": 2, "lines": [v1.lines[0].model_copy(update={"units": 4})]}
    )
    await api.publish(events.updated(v2))
    await api.wait_for_alert(customer_id, v1.alert_id, units=4)
    # A replay of version 1 (a new event id) must not roll the state back.
    await api.publish(events.raised(v1))
    marker = events.alert(
        customer_id
    )  # published after the replay, on the same key: processed after it
    await api.raise_alert(marker)
    assert (await api.get_alert(customer_id, v1.alert_id)).json()["units"] == 4


async def test_withdrawn_alert_shows_as_withdrawn_and_leaves_the_open_list(
    api, events, customer_id
) -> None:
    alert = events.alert(customer_id)
    await api.raise_alert(alert)
    await api.publish(events.withdrawn(alert))
    body = await api.wait_for_alert(customer_id, alert.alert_id, status="withdrawn")
    assert body["status"] == "withdrawn"
    open_ids = [
        i["alert_id"]
        for i in (
            await api.client.get("/v1/me/alerts?state=open", headers=api.auth(customer_id))
        ).json()["items"]
    ]
    resolved = [
        i["alert_id"]
        for i in (
            await api.client.get("/v1/me/alerts?state=resolved", headers=api.auth(customer_id))
        ).json()["items"]
    ]
    assert alert.alert_id not in open_ids
    assert alert.alert_id in resolved
    banner = (await api.client.get("/v1/me/banner", headers=api.auth(customer_id))).json()
    assert banner["open_alerts"] == 0 and banner["most_severe"] is None
    # A withdrawn alert takes no remedy.
    r = await api.client.post(
        f"/v1/me/alerts/{alert.alert_id}/remedy",
        json={"remedy": "replacement"},
        headers=api.auth(customer_id),
    )
    assert r.status_code == 409


async def test_closed_alert_is_resolved(api, events, customer_id) -> None:
    alert = events.alert(customer_id)
    await api.raise_alert(alert)
    await api.publish(
        ev.AlertClosed(
            alert_id=alert.alert_id,
            customer_id=customer_id,
            recall_id=alert.recall_id,
            closed_at=datetime.now(UTC),
        )
    )
    await api.wait_for_alert(customer_id, alert.alert_id, status="closed")
    banner = (await api.client.get("/v1/me/banner", headers=api.auth(customer_id))).json()
    assert banner["open_alerts"] == 0


async def test_redelivered_alert_event_is_applied_once(api, events, customer_id) -> None:
    alert = events.alert(customer_id)
    eid = str(uuid.uuid4())
    await api.publish(events.raised(alert), event_id=eid)
    await api.wait_for_alert(customer_id, alert.alert_id)
    await api.publish(events.raised(alert), event_id=eid)
    await api.raise_alert(events.alert(customer_id))  # processed after the redelivery
    items = (await api.client.get("/v1/me/alerts", headers=api.auth(customer_id))).json()["items"]
    assert [i["alert_id"] for i in items].count(alert.alert_id) == 1
    assert len(items) == 2


async def test_sent_and_failed_notices_show_on_the_alert(api, events, customer_id) -> None:
    alert = events.alert(customer_id)
    await api.raise_alert(alert)
    sent_id, failed_id = str(uuid.uuid4()), str(uuid.uuid4())
    now = datetime.now(UTC)
    await api.publish(
        ev.NoticeSent(
            notice_id=sent_id,
            recipient_role="purchaser",
            sent_at=now,
            **_about(alert, "initial", 1),
        )
    )
    await api.publish(
        ev.NoticeFailed(
            notice_id=failed_id,
            reason="550 mailbox unavailable",
            permanent=True,
            failed_at=now,
            **_about(alert, "update", 2),
        )
    )
    body = await _with_notices(api, customer_id, alert.alert_id, 2)
    by_id = {n["notice_id"]: n for n in body["notices"]}
    assert by_id[sent_id]["kind"] == "initial" and by_id[sent_id]["status"] == "sent"
    assert by_id[failed_id]["kind"] == "update" and by_id[failed_id]["status"] == "failed"
    assert not by_id[sent_id]["to_gift_recipient"] and not by_id[failed_id]["to_gift_recipient"]


async def test_a_notice_to_a_gifts_recipient_shows_as_such_on_the_purchasers_alert(
    api, events, customer_id
) -> None:
    """The purchaser sees that the gift's recipient was told (sent, then failed for good), not
    a mail or a failure of their own."""
    alert = events.alert(customer_id)
    await api.raise_alert(alert)
    mine, theirs, bounced = (str(uuid.uuid4()) for _ in range(3))
    now = datetime.now(UTC)
    common = _about(alert, "initial", 1)
    await api.publish(
        ev.NoticeSent(notice_id=mine, recipient_role="purchaser", sent_at=now, **common)
    )
    await api.publish(
        ev.NoticeSent(
            notice_id=theirs,
            recipient_role="purchaser",
            gift_recipient=True,
            sent_at=now,
            **common,
        )
    )
    await api.publish(
        ev.NoticeFailed(
            notice_id=bounced,
            reason="550 mailbox unavailable",
            permanent=True,
            gift_recipient=True,
            failed_at=now,
            **common,
        )
    )
    body = await _with_notices(api, customer_id, alert.alert_id, 3)
    gift = {n["notice_id"]: n["to_gift_recipient"] for n in body["notices"]}
    assert gift == {mine: False, theirs: True, bounced: True}


async def test_acknowledge_is_recorded_and_repeatable(api, events, customer_id) -> None:
    alert = events.alert(customer_id)
    await api.raise_alert(alert)
    first = await api.client.post(
        f"/v1/me/alerts/{alert.alert_id}/acknowledge", headers=api.auth(customer_id)
    )
    again = await api.client.post(
        f"/v1/me/alerts/{alert.alert_id}/acknowledge", headers=api.auth(customer_id)
    )
    assert first.status_code == again.status_code == 200
    assert first.json()["acknowledged"] is True
    body = (await api.get_alert(customer_id, alert.alert_id)).json()
    assert body["acknowledged"] is True
    # Acknowledging is not resolving: the alert still needs the customer's attention.
    assert body["resolution"] is None
    banner = (await api.client.get("/v1/me/banner", headers=api.auth(customer_id))).json()
    assert banner["open_alerts"] == 1


def _about(alert: ev.AlertState, kind: str, version: int) -> dict[str, Any]:
    """The fields a notice event takes from its alert."""
    return {
        "alert_id": alert.alert_id,
        "customer_id": alert.customer_id,
        "recall_id": alert.recall_id,
        "kind": kind,
        "alert_version": version,
    }


async def _with_notices(api, customer_id: str, alert_id: str, n: int) -> dict:
    """The alert, once customer-api shows ``n`` notices on it."""

    async def shown() -> dict | None:
        body = (await api.get_alert(customer_id, alert_id)).json()
        return body if len(body["notices"]) == n else None

    return await eventually(shown, timeout=15)
