"""Am I affected? on a signed-in customer's alert: the typed lot or serial against the recall's
scope (from recalls.v1), per line; not affected resolves the alert with the typed value kept, and
a confirmed alert cannot be declared not affected without such an answer."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import orjson
import pytest

from recall_shared import events as ev
from recall_shared.testing import eventually

from .test_remedies import _remedy_events

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]


async def with_scope(api, events, customer_id, tier: str = "possibly_affected"):
    """An alert for the customer, and its recall on recalls.v1: lots L100 to L199 of the kettle."""
    alert = events.alert(customer_id, tier=tier)
    recall = ev.RecallSnapshot(
        recall_id=alert.recall_id,
        version=1,
        seller_id="seller-1",
        published_at=datetime(2026, 11, 20, tzinfo=UTC),
        rules=[
            ev.ScopeRule(
                product_ids=["prod-kettle"],
                lots=ev.CodeRule(ranges=[ev.CodeRange(first="L 100", last="L 199")]),
            )
        ],
        content=alert.recall,
    )
    await api.publish(ev.RecallPublished(recall=recall))
    await api.raise_alert(alert)

    async def arrived():
        r = await api.client.get(f"/public/recalls/{recall.recall_id}")
        return r.status_code == 200 or None

    await eventually(arrived, timeout=15, interval=0.1)
    return alert


async def check(api, customer_id, alert, **typed):
    return await api.client.post(
        f"/v1/me/alerts/{alert.alert_id}/label-check", json=typed, headers=api.auth(customer_id)
    )


async def test_a_lot_inside_the_range_is_confirmed_and_changes_nothing(
    api, events, customer_id
) -> None:
    alert = await with_scope(api, events, customer_id)
    r = await check(api, customer_id, alert, lot="l150")
    assert r.status_code == 200, r.text
    assert r.json()["answer"] == "confirmed" and r.json()["alert"]["resolution"] is None


async def test_a_lot_outside_resolves_the_alert_with_the_typed_value(
    api, events, customer_id
) -> None:
    alert = await with_scope(api, events, customer_id)
    r = await check(api, customer_id, alert, lot="L 250")
    assert r.json()["answer"] == "not_affected"
    assert r.json()["alert"]["resolution"] == "not_affected"

    async def declared():
        return await _remedy_events(api, events, customer_id, "remedy.not_affected_declared.v1")

    found = await eventually(declared, timeout=15)
    assert orjson.loads(found[0][1].data)["reason"] == "label check: lot L 250"


async def test_an_unreadable_or_missing_value_cannot_tell(api, events, customer_id) -> None:
    alert = await with_scope(api, events, customer_id)
    r = await check(api, customer_id, alert, serial="SN-1")
    assert r.json() | {"alert": None} == {
        "answer": "cannot_tell",
        "unknown": ["lot"],
        "alert": None,
    }
    assert r.json()["alert"]["resolution"] is None


async def test_a_confirmed_alert_is_not_dismissed_without_a_label_check(
    api, events, customer_id
) -> None:
    alert = await with_scope(api, events, customer_id, tier="confirmed")
    plain = await api.client.post(
        f"/v1/me/alerts/{alert.alert_id}/not-affected", json={}, headers=api.auth(customer_id)
    )
    assert plain.status_code == 409 and "label" in plain.json()["message"]
    checked = await check(api, customer_id, alert, lot="L 300")
    assert checked.json()["answer"] == "not_affected"


async def test_bad_input_and_another_customers_alert(api, events, customer_id) -> None:
    alert = await with_scope(api, events, customer_id)
    assert (await check(api, customer_id, alert, lot="")).status_code == 422
    assert (await check(api, customer_id, alert, colour="red")).status_code == 422
    other = str(uuid.uuid4())
    r = await api.client.post(
        f"/v1/me/alerts/{alert.alert_id}/label-check", json={"lot": "L1"}, headers=api.auth(other)
    )
    assert r.status_code == 404


async def test_the_alert_page_form_checks_the_label(api, events, customer_id) -> None:
    import re

    alert = await with_scope(api, events, customer_id, tier="confirmed")
    cookie = api.page_cookie(customer_id)
    page = (await api.client.get(f"/recalls/{alert.alert_id}", headers=cookie)).text
    assert "Am I affected?" in page and 'name="lot"' in page
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)[1]  # type: ignore[index]

    async def post(lot: str):
        return await api.client.post(
            f"/recalls/{alert.alert_id}/label-check",
            data={"lot": lot, "csrf_token": token, "return_to": "detail"},
            headers={**cookie, "Content-Type": "application/x-www-form-urlencoded"},
        )

    r = await post("L 150")
    assert r.status_code == 303 and "done=label_confirmed" in r.headers["location"]
    shown = await api.client.get(r.headers["location"].split("#")[0], headers=cookie)
    assert "Your unit is affected by this recall." in shown.text
    r = await post("L 999")
    assert "done=label_not_affected" in r.headers["location"]
    assert (await api.get_alert(customer_id, alert.alert_id)).json()["resolution"] == "not_affected"
