"""A label check that confirms a possibly affected alert: the answer is recorded and
remedy.label_confirmed.v1 goes out on remedies.v1 (outbox) for purchase-matcher, which owns the
tier; the alert.updated.v1 it answers with shows the customer the confirmed tier. An alert already
confirmed sends nothing."""

from __future__ import annotations

import asyncpg
import orjson
import pytest

from recall_shared.testing import eventually

from .test_label_check import check, with_scope
from .test_remedies import _remedy_events

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

CONFIRMED = "remedy.label_confirmed.v1"


async def recorded(api, alert_id: str) -> list[tuple]:
    conn = await asyncpg.connect(api.settings.database_url.replace("+asyncpg", ""))
    try:
        rows = await conn.fetch(
            "SELECT answer, lot, alert_version FROM label_checks WHERE alert_id = $1 "
            "ORDER BY checked_at",
            alert_id,
        )
    finally:
        await conn.close()
    return [tuple(r) for r in rows]


async def test_a_confirming_label_is_recorded_and_sent_to_the_matcher(
    api, events, customer_id
) -> None:
    alert = await with_scope(api, events, customer_id)
    r = await check(api, customer_id, alert, lot="l150")
    assert r.json()["answer"] == "confirmed"

    async def sent():
        return await _remedy_events(api, events, customer_id, CONFIRMED)

    [(key, env)] = await eventually(sent, timeout=15)
    body = orjson.loads(env.data)
    assert key == customer_id.encode() and env.subject == alert.alert_id
    assert {k: body[k] for k in ("alert_id", "recall_id", "alert_version", "lot", "serial")} == {
        "alert_id": alert.alert_id,
        "recall_id": alert.recall_id,
        "alert_version": 1,
        "lot": "l150",
        "serial": None,
    }
    assert await recorded(api, alert.alert_id) == [("confirmed", "l150", 1)]

    # purchase-matcher's answer: the alert, confirmed, at its next version.
    upgraded = alert.model_copy(
        update={
            "alert_version": 2,
            "tier": "confirmed",
            "lines": [
                x.model_copy(update={"tier": "confirmed", "unknown_attributes": []})
                for x in alert.lines
            ],
        }
    )
    await api.publish(events.updated(upgraded))
    await api.wait_for_alert(customer_id, alert.alert_id, tier="confirmed")


async def test_every_answer_is_recorded_and_only_news_is_sent(api, events, customer_id) -> None:
    alert = await with_scope(api, events, customer_id, tier="confirmed")
    assert (await check(api, customer_id, alert, lot="L 120")).json()["answer"] == "confirmed"
    assert (await check(api, customer_id, alert, serial="S1")).json()["answer"] == "cannot_tell"
    assert (await check(api, customer_id, alert, lot="L 999")).json()["answer"] == "not_affected"
    assert [a for a, *_ in await recorded(api, alert.alert_id)] == [
        "confirmed",
        "cannot_tell",
        "not_affected",
    ]
    assert await _remedy_events(api, events, customer_id, CONFIRMED) == []


async def test_a_label_confirmed_alert_is_not_dismissed_while_its_upgrade_is_on_its_way(
    api, events, customer_id
) -> None:
    alert = await with_scope(api, events, customer_id)  # possibly affected
    assert (await check(api, customer_id, alert, lot="L 110")).json()["answer"] == "confirmed"
    plain = await api.client.post(
        f"/v1/me/alerts/{alert.alert_id}/not-affected", json={}, headers=api.auth(customer_id)
    )
    assert plain.status_code == 409 and "label" in plain.json()["message"]
    assert (await check(api, customer_id, alert, lot="L 300")).json()["answer"] == "not_affected"
