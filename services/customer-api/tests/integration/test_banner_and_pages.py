"""The orders-page banner (count, most severe first, HTTP caching) and paging through the alerts."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]


async def test_banner_counts_open_alerts_and_shows_the_most_severe_first(
    api, events, customer_id
) -> None:
    empty = await api.client.get("/v1/me/banner", headers=api.auth(customer_id))
    assert empty.status_code == 200
    assert empty.json() == {"open_alerts": 0, "most_severe": None}

    high = events.alert(customer_id, severity="high", title="High kettle")
    critical = events.alert(customer_id, severity="critical", title="Critical heater")
    low = events.alert(customer_id, severity="low", title="Low lamp")
    await api.raise_alert(high)
    await api.raise_alert(critical)
    await api.raise_alert(low)  # the newest, but not the most severe
    r = await api.client.get("/v1/me/banner", headers=api.auth(customer_id))
    assert r.status_code == 200
    body = r.json()
    assert body["open_alerts"] == 3
    assert body["most_severe"]["alert_id"] == critical.alert_id
    assert body["most_severe"]["severity"] == "critical"
    assert body["most_severe"]["title"] == "Critical heater"


async def test_banner_etag_cache_control_and_conditional_get(api, events, customer_id) -> None:
    await api.raise_alert(events.alert(customer_id, severity="high"))
    r = await api.client.get("/v1/me/banner", headers=api.auth(customer_id))
    assert r.status_code == 200
    etag = r.headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"') and len(etag) > 2
    cache = r.headers["Cache-Control"]
    assert "private" in cache and "max-age=" in cache
    assert "Authorization" in r.headers.get("Vary", "")

    # Same state, same tag: 304 without a body.
    same = await api.client.get(
        "/v1/me/banner", headers={**api.auth(customer_id), "If-None-Match": etag}
    )
    assert same.status_code == 304
    assert same.content == b""
    assert same.headers["ETag"] == etag
    # A list of tags containing it also matches; a stale tag does not.
    listed = await api.client.get(
        "/v1/me/banner", headers={**api.auth(customer_id), "If-None-Match": f'"stale", {etag}'}
    )
    assert listed.status_code == 304
    stale = await api.client.get(
        "/v1/me/banner", headers={**api.auth(customer_id), "If-None-Match": '"stale"'}
    )
    assert stale.status_code == 200 and stale.json()["open_alerts"] == 1

    # A new alert changes the banner, hence its tag.
    newer = events.alert(customer_id, severity="critical")
    await api.raise_alert(newer)
    after = await api.client.get(
        "/v1/me/banner", headers={**api.auth(customer_id), "If-None-Match": etag}
    )
    assert after.status_code == 200
    assert after.headers["ETag"] != etag
    assert after.json()["open_alerts"] == 2
    assert after.json()["most_severe"]["alert_id"] == newer.alert_id


async def test_banner_etag_is_per_customer_state(api, events) -> None:
    """Two customers with no alerts share the tag basis; the tag only depends on what the banner
    shows."""
    a, b = events.new_customer(), events.new_customer()
    await api.raise_alert(events.alert(a))
    ra = await api.client.get("/v1/me/banner", headers=api.auth(a))
    rb = await api.client.get(
        "/v1/me/banner", headers={**api.auth(b), "If-None-Match": ra.headers["ETag"]}
    )
    assert rb.status_code == 200, (
        "customer A's tag must not validate customer B's (different) banner"
    )
    assert rb.json()["open_alerts"] == 0


async def test_pagination_returns_every_alert_exactly_once(api, events, customer_id) -> None:
    created = []
    for i in range(5):
        a = events.alert(customer_id, title=f"Product {i}")
        await api.raise_alert(a)
        created.append(a.alert_id)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        url = "/v1/me/alerts?limit=2" + (f"&cursor={cursor}" if cursor else "")
        r = await api.client.get(url, headers=api.auth(customer_id))
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["items"]) <= 2
        seen += [i["alert_id"] for i in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert pages < 10, "pagination does not end"
    assert pages == 3
    assert sorted(seen) == sorted(created)
    assert len(seen) == len(set(seen))
    # Newest first.
    assert seen == list(reversed(created))


async def test_exact_page_boundary_has_no_dangling_cursor(api, events, customer_id) -> None:
    for _ in range(2):
        await api.raise_alert(events.alert(customer_id))
    r = await api.client.get("/v1/me/alerts?limit=2", headers=api.auth(customer_id))
    assert len(r.json()["items"]) == 2
    assert r.json()["next_cursor"] is None


async def test_state_filter_open_and_resolved(api, events, customer_id) -> None:
    still_open = events.alert(customer_id)
    declared = events.alert(customer_id, tier="possibly_affected")
    gone = events.alert(customer_id)
    for a in (still_open, declared, gone):
        await api.raise_alert(a)
    r = await api.client.post(
        f"/v1/me/alerts/{declared.alert_id}/not-affected", json={}, headers=api.auth(customer_id)
    )
    assert r.status_code == 200
    await api.publish(events.withdrawn(gone))
    await api.wait_for_alert(customer_id, gone.alert_id, status="withdrawn")

    async def ids(state: str) -> set[str]:
        r = await api.client.get(f"/v1/me/alerts?state={state}", headers=api.auth(customer_id))
        assert r.status_code == 200
        return {i["alert_id"] for i in r.json()["items"]}

    assert await ids("open") == {still_open.alert_id}
    assert await ids("resolved") == {declared.alert_id, gone.alert_id}
    assert await ids("all") == {still_open.alert_id, declared.alert_id, gone.alert_id}


async def test_bad_paging_parameters_are_client_errors(api, customer_id) -> None:
    h = api.auth(customer_id)
    # A cursor not of the documented shape is refused by its pattern, naming the parameter.
    bad = await api.client.get("/v1/me/alerts?cursor=garbage", headers=h)
    assert bad.status_code == 422 and "cursor" in bad.text
    assert (await api.client.get("/v1/me/alerts?cursor=abc_def", headers=h)).status_code == 422
    # Any string of that shape is a position: a page after it (here: empty).
    page = await api.client.get("/v1/me/alerts?cursor=1_x", headers=h)
    assert page.status_code == 200 and page.json()["items"] == []
    assert (await api.client.get("/v1/me/alerts?limit=0", headers=h)).status_code == 422
    assert (await api.client.get("/v1/me/alerts?limit=101", headers=h)).status_code == 422
    assert (await api.client.get("/v1/me/alerts?state=pending", headers=h)).status_code == 422
