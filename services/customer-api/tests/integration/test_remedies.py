"""Remedy choices and 'not affected' answers: through the outbox to remedies.v1, and their
progress."""

from __future__ import annotations

import asyncio

import pytest

from recall_shared.testing import eventually
from recall_shared.topics import REMEDIES

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]


async def _remedy_events(api, events, customer_id: str, event_type: str) -> list:
    records = await events.read_all(api.topic(REMEDIES))
    return [(k, env) for k, env in records if k == customer_id.encode() and env.type == event_type]


async def test_choosing_a_remedy_publishes_one_request_through_the_outbox(
    api, events, customer_id
) -> None:
    import orjson

    alert = events.alert(customer_id, remedies=("refund_on_destruction", "replacement"))
    await api.raise_alert(alert)
    url = f"/v1/me/alerts/{alert.alert_id}/remedy"
    r = await api.client.post(
        url, json={"remedy": "refund_on_destruction"}, headers=api.auth(customer_id)
    )
    assert r.status_code == 202, r.text
    status = r.json()
    assert status["remedy"] == "refund_on_destruction"
    assert status["state"] == "requested"
    assert "Idempotent-Replayed" not in r.headers

    async def published() -> list:
        return await _remedy_events(api, events, customer_id, "remedy.requested.v1")

    found = await eventually(published, timeout=15)
    assert len(found) == 1
    key, env = found[0]
    assert key == customer_id.encode()
    body = orjson.loads(env.data)
    assert body["request_id"] == status["request_id"]
    assert body["alert_id"] == alert.alert_id
    assert body["recall_id"] == alert.recall_id
    assert body["customer_id"] == customer_id
    assert body["remedy"] == "refund_on_destruction"
    assert env.subject == alert.alert_id

    # The same choice again is answered with the original, and nothing new is published.
    again = await api.client.post(
        url, json={"remedy": "refund_on_destruction"}, headers=api.auth(customer_id)
    )
    assert again.status_code == 200
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json()["request_id"] == status["request_id"]
    # A different remedy afterwards conflicts.
    other = await api.client.post(
        url, json={"remedy": "replacement"}, headers=api.auth(customer_id)
    )
    assert other.status_code == 409
    assert "refund_on_destruction" in other.text
    await asyncio.sleep(
        1.0
    )  # the relay publishes within milliseconds of a commit; give it ample time
    assert len(await published()) == 1
    # The progress route shows the request.
    progress = await api.client.get(url, headers=api.auth(customer_id))
    assert progress.status_code == 200
    assert progress.json()["request_id"] == status["request_id"]
    assert progress.json()["state"] == "requested"


async def test_a_remedy_the_recall_does_not_offer_is_refused(api, events, customer_id) -> None:
    alert = events.alert(customer_id, remedies=("replacement",))
    await api.raise_alert(alert)
    url = f"/v1/me/alerts/{alert.alert_id}/remedy"
    r = await api.client.post(url, json={"remedy": "repair"}, headers=api.auth(customer_id))
    assert r.status_code == 422
    assert "remedy" in r.text and "repair" in r.text
    # Nothing was recorded: the progress route has nothing and an offered remedy still works.
    assert (await api.client.get(url, headers=api.auth(customer_id))).status_code == 404
    ok = await api.client.post(url, json={"remedy": "replacement"}, headers=api.auth(customer_id))
    assert ok.status_code == 202


@pytest.mark.parametrize(
    "body",
    [{}, {"remedy": "cash"}, {"remedy": "replacement", "extra": 1}, {"remedy": None}, []],
    ids=["missing", "unknown", "extra_field", "null", "not_an_object"],
)
async def test_invalid_remedy_body_is_422(api, events, customer_id, body) -> None:
    alert = events.alert(customer_id)
    await api.raise_alert(alert)
    url = f"/v1/me/alerts/{alert.alert_id}/remedy"
    r = await api.client.post(url, json=body, headers=api.auth(customer_id))
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "validation_failed"
    assert (await api.client.get(url, headers=api.auth(customer_id))).status_code == 404


async def test_case_transitions_update_the_progress_and_a_final_state_resolves_the_alert(
    api, events, customer_id
) -> None:
    alert = events.alert(customer_id, severity="critical")
    other = events.alert(customer_id, severity="low")
    await api.raise_alert(alert)
    await api.raise_alert(other)
    url = f"/v1/me/alerts/{alert.alert_id}/remedy"
    r = await api.client.post(
        url, json={"remedy": "refund_on_destruction"}, headers=api.auth(customer_id)
    )
    request_id = r.json()["request_id"]
    banner = (await api.client.get("/v1/me/banner", headers=api.auth(customer_id))).json()
    assert banner["open_alerts"] == 2, "choosing a remedy alone does not resolve the alert"

    await api.publish(
        events.case_transitioned(
            request_id, alert, state="requested", transition="open", from_state=None
        )
    )

    async def progress(state: str):
        body = (await api.client.get(url, headers=api.auth(customer_id))).json()
        return body if body["state"] == state and body["case_id"] else None

    opened = await eventually(lambda: progress("requested"), timeout=15)
    assert opened["case_id"] == f"case-{request_id[:8]}"

    await api.publish(
        events.case_transitioned(
            request_id,
            alert,
            state="refunded",
            transition="issue_refund",
            from_state="requested",
            refunded="39.98",
            currency="EUR",
        )
    )
    done = await eventually(lambda: progress("refunded"), timeout=15)
    assert done["refunded_amount"] in ("39.98", 39.98)
    assert done["currency"] == "EUR"

    detail = await api.wait_for_alert(customer_id, alert.alert_id, resolution="remedied")
    assert detail["remedy"]["state"] == "refunded"
    banner = (await api.client.get("/v1/me/banner", headers=api.auth(customer_id))).json()
    assert banner["open_alerts"] == 1
    assert banner["most_severe"]["alert_id"] == other.alert_id
    open_ids = {
        i["alert_id"]
        for i in (
            await api.client.get("/v1/me/alerts?state=open", headers=api.auth(customer_id))
        ).json()["items"]
    }
    assert open_ids == {other.alert_id}


async def test_a_non_final_case_state_keeps_the_alert_open(api, events, customer_id) -> None:
    alert = events.alert(customer_id, remedies=("refund_with_return",))
    await api.raise_alert(alert)
    url = f"/v1/me/alerts/{alert.alert_id}/remedy"
    request_id = (
        await api.client.post(
            url, json={"remedy": "refund_with_return"}, headers=api.auth(customer_id)
        )
    ).json()["request_id"]
    await api.publish(
        events.case_transitioned(
            request_id,
            alert,
            state="label_issued",
            transition="issue_label",
            from_state="requested",
            remedy="refund_with_return",
        )
    )

    async def labelled():
        return (await api.client.get(url, headers=api.auth(customer_id))).json()[
            "state"
        ] == "label_issued"

    await eventually(labelled, timeout=15)
    banner = (await api.client.get("/v1/me/banner", headers=api.auth(customer_id))).json()
    assert banner["open_alerts"] == 1


async def test_not_affected_publishes_a_declaration_and_resolves_the_alert(
    api, events, customer_id
) -> None:
    import orjson

    alert = events.alert(customer_id, tier="possibly_affected")
    await api.raise_alert(alert)
    url = f"/v1/me/alerts/{alert.alert_id}/not-affected"
    r = await api.client.post(
        url, json={"reason": "my lot is 12345"}, headers=api.auth(customer_id)
    )
    assert r.status_code == 200
    assert r.json()["resolution"] == "not_affected"
    again = await api.client.post(url, json={"reason": "still not"}, headers=api.auth(customer_id))
    assert again.status_code == 200

    async def declared() -> list:
        return await _remedy_events(api, events, customer_id, "remedy.not_affected_declared.v1")

    found = await eventually(declared, timeout=15)
    body = orjson.loads(found[0][1].data)
    assert body["alert_id"] == alert.alert_id and body["recall_id"] == alert.recall_id
    assert body["reason"] == "my lot is 12345"
    await asyncio.sleep(1.0)
    assert len(await declared()) == 1, "a repeated answer must not publish a second declaration"

    items = (
        await api.client.get("/v1/me/alerts?state=open", headers=api.auth(customer_id))
    ).json()["items"]
    assert alert.alert_id not in {i["alert_id"] for i in items}
    banner = (await api.client.get("/v1/me/banner", headers=api.auth(customer_id))).json()
    assert banner["open_alerts"] == 0


async def test_not_affected_on_a_withdrawn_alert_conflicts(api, events, customer_id) -> None:
    alert = events.alert(customer_id)
    await api.raise_alert(alert)
    await api.publish(events.withdrawn(alert))
    await api.wait_for_alert(customer_id, alert.alert_id, status="withdrawn")
    r = await api.client.post(
        f"/v1/me/alerts/{alert.alert_id}/not-affected", json={}, headers=api.auth(customer_id)
    )
    assert r.status_code == 409


async def test_not_affected_rejects_unknown_fields(api, events, customer_id) -> None:
    alert = events.alert(customer_id)
    await api.raise_alert(alert)
    r = await api.client.post(
        f"/v1/me/alerts/{alert.alert_id}/not-affected",
        json={"reason": "x", "admin": True},
        headers=api.auth(customer_id),
    )
    assert r.status_code == 422
    assert (await api.get_alert(customer_id, alert.alert_id)).json()["resolution"] is None


async def test_reusing_an_idempotency_key_on_another_alert_is_a_client_error(
    api, events, customer_id
) -> None:
    first, second = events.alert(customer_id), events.alert(customer_id)
    await api.raise_alert(first)
    await api.raise_alert(second)
    h = {**api.auth(customer_id), "Idempotency-Key": "key-1"}
    r1 = await api.client.post(
        f"/v1/me/alerts/{first.alert_id}/remedy", json={"remedy": "replacement"}, headers=h
    )
    assert r1.status_code == 202
    r2 = await api.client.post(
        f"/v1/me/alerts/{second.alert_id}/remedy", json={"remedy": "replacement"}, headers=h
    )
    assert r2.status_code == 422, f"{r2.status_code} {r2.text}"
    assert "Idempotency-Key" in r2.text
    assert (
        await api.client.get(
            f"/v1/me/alerts/{second.alert_id}/remedy", headers=api.auth(customer_id)
        )
    ).status_code == 404
    # The same key on the same alert is a replay.
    again = await api.client.post(
        f"/v1/me/alerts/{first.alert_id}/remedy", json={"remedy": "replacement"}, headers=h
    )
    assert again.status_code == 200 and again.json()["request_id"] == r1.json()["request_id"]
    # Without the reused key the second alert's remedy can still be chosen.
    r3 = await api.client.post(
        f"/v1/me/alerts/{second.alert_id}/remedy",
        json={"remedy": "replacement"},
        headers=api.auth(customer_id),
    )
    assert r3.status_code == 202


async def test_concurrent_identical_choices_make_one_request(api, events, customer_id) -> None:
    alert = events.alert(customer_id)
    await api.raise_alert(alert)
    url = f"/v1/me/alerts/{alert.alert_id}/remedy"
    responses = await asyncio.gather(
        *(
            api.client.post(url, json={"remedy": "replacement"}, headers=api.auth(customer_id))
            for _ in range(5)
        )
    )
    codes = sorted(r.status_code for r in responses)
    assert codes == [200, 200, 200, 200, 202], [r.text for r in responses]
    assert len({r.json()["request_id"] for r in responses}) == 1

    async def published() -> list:
        return await _remedy_events(api, events, customer_id, "remedy.requested.v1")

    await eventually(published, timeout=15)
    await asyncio.sleep(0.5)
    assert len(await published()) == 1
