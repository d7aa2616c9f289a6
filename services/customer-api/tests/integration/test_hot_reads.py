"""The row-level read path of GET /v1/me/alerts and GET /v1/me/banner (raw asyncpg, JSON written
from the rows) answers exactly what the validated path (ORM entity, AlertState, pydantic models)
answers for the same alert."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from customer_api.reads import APPLICATION_NAME
from recall_shared.db import asyncpg_dsn

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

SUMMARY_FIELDS = (
    "alert_id",
    "recall_id",
    "status",
    "resolution",
    "tier",
    "kind",
    "title",
    "severity",
    "hazard",
    "stop_using",
    "images",
    "units",
    "acknowledged",
    "created_at",
    "updated_at",
)


def _summary_of(detail: dict) -> dict:
    """The AlertSummary part of an AlertDetail (GET /v1/me/alerts/{id}, built from the validated
    state)."""
    return {k: detail[k] for k in SUMMARY_FIELDS}


async def test_list_items_and_banner_match_the_validated_summary_field_for_field(
    api, events, customer_id
) -> None:
    plain = events.alert(customer_id, severity="low", title="Plain lamp", units=1)
    rich = events.alert(
        customer_id,
        severity="critical",
        title='Heater "X" <b>',
        kind="safety_alert",
        tier="possibly_affected",
    )
    rich = rich.model_copy(
        update={
            "recall": rich.recall.model_copy(
                update={"images": ["https://img.example/a.jpg", "https://img.example/ü?x=1&y=2"]}
            ),
            "lines": [
                rich.lines[0],
                rich.lines[0].model_copy(update={"line_id": "line-2", "units": 3}),
            ],
        }
    )
    withdrawn = events.alert(customer_id, severity="high", title="Withdrawn kettle")
    for a in (plain, rich, withdrawn):
        await api.raise_alert(a)
    r = await api.client.post(
        f"/v1/me/alerts/{plain.alert_id}/acknowledge", headers=api.auth(customer_id)
    )
    assert r.status_code == 200
    await api.publish(events.withdrawn(withdrawn))
    await api.wait_for_alert(customer_id, withdrawn.alert_id, status="withdrawn")

    details = {
        a.alert_id: (await api.get_alert(customer_id, a.alert_id)).json()
        for a in (plain, rich, withdrawn)
    }
    page = await api.client.get("/v1/me/alerts", headers=api.auth(customer_id))
    assert page.status_code == 200 and page.headers["content-type"] == "application/json"
    items = page.json()["items"]
    assert [i["alert_id"] for i in items] == [withdrawn.alert_id, rich.alert_id, plain.alert_id]
    for item in items:
        assert item == _summary_of(details[item["alert_id"]])  # same values, same datetime text
    assert details[rich.alert_id]["units"] == 2 + 3
    assert details[rich.alert_id]["images"] == [
        "https://img.example/a.jpg",
        "https://img.example/ü?x=1&y=2",
    ]
    assert details[plain.alert_id]["acknowledged"] is True

    banner = (await api.client.get("/v1/me/banner", headers=api.auth(customer_id))).json()
    assert banner["open_alerts"] == 2
    assert banner["most_severe"] == _summary_of(details[rich.alert_id])


async def test_a_cursor_that_is_a_number_but_no_date_is_a_client_error(api, customer_id) -> None:
    r = await api.client.get(
        "/v1/me/alerts?cursor=" + "9" * 30 + "_x", headers=api.auth(customer_id)
    )
    assert r.status_code == 422  # more digits than the pattern allows: never reaches a date
    assert "cursor" in r.text


async def test_reads_survive_the_server_dropping_the_pools_connections(
    api, events, customer_id
) -> None:
    await api.raise_alert(events.alert(customer_id))
    assert (await api.client.get("/v1/me/banner", headers=api.auth(customer_id))).status_code == 200
    admin = await asyncpg.connect(asyncpg_dsn(api.settings.database_url))
    try:
        killed = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name = $1",
            APPLICATION_NAME,
        )
    finally:
        await admin.close()
    assert killed >= 1
    for _ in range(15):  # more than the pool holds: every dropped connection is met
        banner = await api.client.get("/v1/me/banner", headers=api.auth(customer_id))
        alerts = await api.client.get("/v1/me/alerts", headers=api.auth(customer_id))
        assert banner.status_code == 200 and banner.json()["open_alerts"] == 1, banner.text
        assert alerts.status_code == 200 and len(alerts.json()["items"]) == 1, alerts.text
        await asyncio.sleep(0)


async def test_the_banner_hot_path_answers_like_the_route(api, events, customer_id) -> None:
    """The hot path (a valid token) and the FastAPI route (reached directly here) give the same
    answer."""
    import httpx

    await api.raise_alert(events.alert(customer_id, severity="critical"))
    app = api.client._transport.app
    route_only = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=_RouterOnly(app)), base_url="http://testserver"
    )
    async with route_only:
        for extra in ({}, {"If-None-Match": '"stale"'}):
            hot = await api.client.get("/v1/me/banner", headers={**api.auth(customer_id), **extra})
            plain = await route_only.get(
                "/v1/me/banner", headers={**api.auth(customer_id), **extra}
            )
            assert hot.status_code == plain.status_code == 200
            assert hot.content == plain.content
            for h in ("content-type", "content-length", "etag", "cache-control", "vary"):
                assert hot.headers[h] == plain.headers[h], h
        etag = hot.headers["etag"]
        hot = await api.client.get(
            "/v1/me/banner", headers={**api.auth(customer_id), "If-None-Match": etag}
        )
        plain = await route_only.get(
            "/v1/me/banner", headers={**api.auth(customer_id), "If-None-Match": etag}
        )
        assert hot.status_code == plain.status_code == 304 and hot.content == plain.content == b""
        assert hot.headers["etag"] == plain.headers["etag"] == etag


async def test_the_banner_hot_path_keeps_correlation_ids_and_request_metrics(
    api, customer_id
) -> None:
    def served() -> float:
        return api.client._transport.app.state.runtime.metrics.http_requests.labels(
            "GET", "/v1/me/banner", "200"
        )._value.get()

    before = served()
    r = await api.client.get(
        "/v1/me/banner", headers={**api.auth(customer_id), "X-Correlation-Id": "cid-hot-1"}
    )
    assert r.status_code == 200 and r.headers["x-correlation-id"] == "cid-hot-1"
    assert served() == before + 1
    text = (await api.client.get("/metrics")).text
    assert 'http_requests_total{method="GET",route="/v1/me/banner",status="200"}' in text


class _RouterOnly:
    """The app's FastAPI router with only the middleware FastAPI's routes need: no hot path."""

    def __init__(self, app) -> None:
        from fastapi.middleware.asyncexitstack import AsyncExitStackMiddleware

        self.app = app
        self.stack = AsyncExitStackMiddleware(app.router)

    async def __call__(self, scope, receive, send) -> None:
        scope["app"] = self.app
        await self.stack(scope, receive, send)
