"""The customer's first view of each version of an alert page: one alert.viewed.v1 through the
outbox to alert_views.v1, however many views; none for another customer's alert (still the 404
page) nor for a JSON API read, one for the JSON API's "I have read this alert"; and a failed
write never fails the page, the next view records it."""

from __future__ import annotations

import asyncio
import re
import time

import asyncpg
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from recall_shared.db import asyncpg_dsn
from recall_shared.testing import eventually
from recall_shared.topics import ALERT_VIEWS

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

VIEWED = "alert.viewed.v1"
FAILED_WRITES = "customer_api_view_writes_failed"


async def failed_writes(api, cause: str) -> float:
    """customer_api_view_writes_failed_total{cause} as /metrics shows it."""
    text = (await api.client.get("/metrics")).text
    for family in text_string_to_metric_families(text):
        if family.name == FAILED_WRITES:
            for sample in family.samples:
                if sample.name.endswith("_total") and sample.labels == {"cause": cause}:
                    return sample.value
    raise AssertionError(f"no {FAILED_WRITES}_total{{cause={cause!r}}} on /metrics")


async def views_of(api, events, alert_id: str) -> list[dict]:
    records = await events.read_all(api.topic(ALERT_VIEWS))
    return [
        {**orjson.loads(env.data), "key": key}
        for key, env in records
        if env.type == VIEWED and env.subject == alert_id
    ]


async def wait_for_views(api, events, alert_id: str, n: int) -> list[dict]:
    async def published() -> list[dict] | None:
        found = await views_of(api, events, alert_id)
        assert len(found) <= n, found
        return found if len(found) == n else None

    return await eventually(published, timeout=15)


async def test_the_first_view_of_each_version_is_published_once(
    api, events, customer_id, caplog
) -> None:
    alert = events.alert(customer_id, title="Viewed kettle", tier="possibly_affected")
    await api.raise_alert(alert)
    cookie = api.page_cookie(customer_id)
    # Several tabs at once, then again: the first insert wins, the others wait for it and pass.
    pages = await asyncio.gather(
        *(api.client.get(f"/recalls/{alert.alert_id}", headers=cookie) for _ in range(4))
    )
    pages.append(await api.client.get(f"/recalls/{alert.alert_id}", headers=cookie))
    for r in pages:
        assert r.status_code == 200 and "Viewed kettle" in r.text
    assert "recording an alert view failed" not in caplog.text, "no tab lost its write"
    (view,) = await wait_for_views(api, events, alert.alert_id, 1)
    assert view["key"] == customer_id.encode()
    assert (view["customer_id"], view["recall_id"], view["alert_version"]) == (
        customer_id,
        alert.recall_id,
        1,
    )

    amended = alert.model_copy(update={"alert_version": 2, "tier": "confirmed"})
    await api.publish(events.updated(amended))
    await api.wait_for_alert(customer_id, alert.alert_id, tier="confirmed")
    for _ in range(2):
        assert (await api.client.get(f"/recalls/{alert.alert_id}", headers=cookie)).is_success
    found = await wait_for_views(api, events, alert.alert_id, 2)
    assert sorted(v["alert_version"] for v in found) == [1, 2]
    await asyncio.sleep(0.5)  # the relay publishes within milliseconds: nothing more comes
    assert len(await views_of(api, events, alert.alert_id)) == 2


async def test_another_customers_alert_is_not_found_and_not_viewed(api, events) -> None:
    owner, other = events.new_customer(), events.new_customer()
    theirs, mine, read_by_app = events.alert(owner), events.alert(other), events.alert(other)
    for alert in (theirs, mine, read_by_app):
        await api.raise_alert(alert)
    r = await api.client.get(f"/recalls/{theirs.alert_id}", headers=api.page_cookie(other))
    assert r.status_code == 404 and "Alert not found" in r.text
    # The JSON API's read does not count (a client may fetch without anyone reading).
    assert (await api.get_alert(other, read_by_app.alert_id)).status_code == 200
    # The other customer's own view is published after the refused one would have been.
    await api.client.get(f"/recalls/{mine.alert_id}", headers=api.page_cookie(other))
    await wait_for_views(api, events, mine.alert_id, 1)
    assert await views_of(api, events, theirs.alert_id) == []
    assert await views_of(api, events, read_by_app.alert_id) == []
    # An app says it was read with "I have read this alert": that counts.
    r = await api.client.post(
        f"/v1/me/alerts/{read_by_app.alert_id}/acknowledge", headers=api.auth(other)
    )
    assert r.status_code == 200 and r.json()["acknowledged"] is True
    await wait_for_views(api, events, read_by_app.alert_id, 1)


async def test_a_failed_write_shows_the_page_and_the_next_view_records_it(
    api, events, customer_id, caplog
) -> None:
    alert = events.alert(customer_id, title="Kettle seen while the write fails")
    await api.raise_alert(alert)
    cookie = api.page_cookie(customer_id)
    errors_before = await failed_writes(api, "error")
    admin = await asyncpg.connect(asyncpg_dsn(api.settings.database_url))
    try:
        await admin.execute(
            """
            CREATE FUNCTION refuse_views() RETURNS trigger LANGUAGE plpgsql AS
              $$ BEGIN RAISE EXCEPTION 'views refused by the test'; END $$;
            CREATE TRIGGER refuse_views BEFORE INSERT ON alert_views
              FOR EACH ROW EXECUTE FUNCTION refuse_views();
            """
        )
        try:
            r = await api.client.get(f"/recalls/{alert.alert_id}", headers=cookie)
            assert r.status_code == 200 and "Kettle seen while the write fails" in r.text
            assert "recording an alert view failed" in caplog.text
            assert await failed_writes(api, "error") == errors_before + 1
        finally:
            await admin.execute(
                "DROP TRIGGER refuse_views ON alert_views; DROP FUNCTION refuse_views()"
            )
        assert (
            await admin.fetchval(
                "SELECT count(*) FROM alert_views WHERE alert_id = $1", alert.alert_id
            )
            == 0
        )
    finally:
        await admin.close()
    r = await api.client.get(f"/recalls/{alert.alert_id}", headers=cookie)
    assert r.status_code == 200
    (view,) = await wait_for_views(api, events, alert.alert_id, 1)
    assert view["alert_version"] == 1


async def test_i_have_read_this_on_the_list_counts_as_a_view(api, events, customer_id) -> None:
    alert = events.alert(customer_id)
    await api.raise_alert(alert)
    cookie = api.page_cookie(customer_id)
    listing = await api.client.get("/recalls", headers=cookie)
    token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', listing.text)
    assert token, "the list has its forms"
    r = await api.client.post(
        f"/recalls/{alert.alert_id}/acknowledge",
        data={"csrf_token": token.group(1), "return_to": "list"},
        headers={**cookie, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 303 and "done=acknowledge" in r.headers["location"]
    await wait_for_views(api, events, alert.alert_id, 1)


async def test_a_stuck_write_is_given_up_after_the_timeout_and_the_page_shown(
    api, events, customer_id, caplog
) -> None:
    alert = events.alert(customer_id, title="Kettle seen while alert_views is locked")
    await api.raise_alert(alert)
    cookie = api.page_cookie(customer_id)
    timeouts_before = await failed_writes(api, "timeout")
    errors_before = await failed_writes(api, "error")
    limit = api.settings.view_write_timeout_ms / 1000
    admin = await asyncpg.connect(asyncpg_dsn(api.settings.database_url))
    try:
        # Another transaction holds the table: without the timeout the insert would wait for it.
        async with admin.transaction():
            await admin.execute("LOCK TABLE alert_views IN ACCESS EXCLUSIVE MODE")
            started = time.monotonic()
            r = await api.client.get(f"/recalls/{alert.alert_id}", headers=cookie)
            took = time.monotonic() - started
        assert r.status_code == 200 and "Kettle seen while alert_views is locked" in r.text
        assert limit <= took < limit + 2, f"the page took {took:.2f} s"
        assert "recording an alert view failed" in caplog.text
        assert await failed_writes(api, "timeout") == timeouts_before + 1
        assert await failed_writes(api, "error") == errors_before
        assert (
            await admin.fetchval(
                "SELECT count(*) FROM alert_views WHERE alert_id = $1", alert.alert_id
            )
            == 0
        )
    finally:
        await admin.close()
    # The lock released, the next view records it, within the same bound.
    assert (await api.client.get(f"/recalls/{alert.alert_id}", headers=cookie)).status_code == 200
    await wait_for_views(api, events, alert.alert_id, 1)
    assert await failed_writes(api, "timeout") == timeouts_before + 1


async def test_the_alert_page_says_that_opening_it_is_noted(api, events, customer_id) -> None:
    alert = events.alert(customer_id)
    await api.raise_alert(alert)
    cookie = api.page_cookie(customer_id)
    en = await api.client.get(f"/recalls/{alert.alert_id}", headers=cookie)
    assert en.status_code == 200
    assert (
        "Opening this page tells us that our notice reached you, so we do not send it to you "
        "again another way, such as by text message or letter." in en.text
    )
    de = await api.client.get(
        f"/recalls/{alert.alert_id}", headers={**cookie, "Accept-Language": "de"}
    )
    assert '<html lang="de">' in de.text
    assert (
        "Wenn Sie diese Seite öffnen, wissen wir, dass unser Hinweis Sie erreicht hat." in de.text
    )
    # The list is not an opening of each alert (views.py): it says nothing of the kind.
    listing = await api.client.get("/recalls", headers=cookie)
    assert listing.status_code == 200 and "Opening this page" not in listing.text
