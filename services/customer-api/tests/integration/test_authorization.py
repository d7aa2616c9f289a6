"""Every /v1/me route, for the owner, another customer, and no / expired / forged tokens.

Another customer's alert must look exactly like a missing one (404), never 403 and never the data.
One running service is shared by the module; every route gets its own alert so the owner's calls
do not interfere with each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]


@dataclass(frozen=True)
class Route:
    name: str
    method: str
    path: str  # "{id}" is replaced by the alert id
    owner_status: int
    body: dict | None = None

    @property
    def per_alert(self) -> bool:
        return "{id}" in self.path

    @property
    def mutating(self) -> bool:
        return self.method == "POST"


ROUTES = [
    Route("list_alerts", "GET", "/v1/me/alerts", 200),
    Route("get_alert", "GET", "/v1/me/alerts/{id}", 200),
    Route("banner", "GET", "/v1/me/banner", 200),
    Route("acknowledge", "POST", "/v1/me/alerts/{id}/acknowledge", 200),
    Route(
        "not_affected",
        "POST",
        "/v1/me/alerts/{id}/not-affected",
        200,
        {"reason": "lot 999 on my label"},
    ),
    Route("choose_remedy", "POST", "/v1/me/alerts/{id}/remedy", 202, {"remedy": "replacement"}),
    Route("get_remedy", "GET", "/v1/me/alerts/{id}/remedy", 200),
]
UNAUTHENTICATED = ["no_token", "expired_token", "wrong_signature", "malformed_token"]


@dataclass
class World:
    api: Any  # the conftest's Api (a test module cannot import its conftest)
    owner: str
    other: str
    alerts: dict[str, str]  # route name -> the owner's alert used by that route's owner call
    untouched: (
        str  # an alert of the owner that only the other customer and anonymous callers try to use
    )
    other_alert: str


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(api, events) -> World:
    owner, other = events.new_customer(), events.new_customer()
    alerts = {}
    for route in ROUTES:
        # possibly affected: a confirmed alert is declared not affected only by a label check
        a = events.alert(owner, title=f"Kettle for {route.name}", tier="possibly_affected")
        await api.publish(events.raised(a))
        alerts[route.name] = a.alert_id
    untouched = events.alert(owner, title="Untouched kettle")
    mine = events.alert(other, title="The other customer's own kettle")
    await api.publish(events.raised(untouched))
    await api.publish(events.raised(mine))
    for aid in [*alerts.values(), untouched.alert_id]:
        await api.wait_for_alert(owner, aid)
    await api.wait_for_alert(other, mine.alert_id)
    # The remedy-progress route needs a chosen remedy.
    r = await api.client.post(
        f"/v1/me/alerts/{alerts['get_remedy']}/remedy",
        json={"remedy": "replacement"},
        headers=api.auth(owner),
    )
    assert r.status_code == 202, r.text
    return World(api, owner, other, alerts, untouched.alert_id, mine.alert_id)


def _headers(world: World, case: str, events) -> dict[str, str]:
    api = world.api
    if case == "owner":
        return {"Authorization": f"Bearer {api.token(world.owner)}"}
    if case == "other_customer":
        return {"Authorization": f"Bearer {api.token(world.other)}"}
    if case == "no_token":
        return {}
    if case == "expired_token":
        return {"Authorization": f"Bearer {api.token(world.owner, ttl=timedelta(minutes=-10))}"}
    if case == "wrong_signature":
        return {"Authorization": f"Bearer {api.token(world.owner, secret=events.other_secret)}"}
    if case == "malformed_token":
        return {"Authorization": "Bearer not.a.jwt"}
    raise AssertionError(case)


async def _call(
    world: World, route: Route, alert_id: str, headers: dict[str, str]
) -> httpx.Response:
    path = route.path.replace("{id}", alert_id)
    if route.method == "GET":
        return await world.api.client.get(path, headers=headers)
    return await world.api.client.post(path, json=route.body, headers=headers)


@pytest.mark.parametrize("route", ROUTES, ids=[r.name for r in ROUTES])
async def test_owner_is_served(world: World, route: Route, events) -> None:
    aid = world.alerts[route.name]
    r = await _call(world, route, aid, _headers(world, "owner", events))
    assert r.status_code == route.owner_status, r.text
    body = r.json()
    if route.name == "list_alerts":
        ids = {i["alert_id"] for i in body["items"]}
        assert set(world.alerts.values()) | {world.untouched} <= ids
        assert world.other_alert not in ids
    elif route.name == "banner":
        assert body["open_alerts"] >= 1
    elif route.name in ("get_alert", "acknowledge", "not_affected"):
        assert body["alert_id"] == aid
    elif route.name in ("choose_remedy", "get_remedy"):
        assert body["remedy"] == "replacement"


@pytest.mark.parametrize("route", ROUTES, ids=[r.name for r in ROUTES])
async def test_other_customer_never_sees_or_changes_the_alert(
    world: World, route: Route, events
) -> None:
    api = world.api
    r = await _call(world, route, world.untouched, _headers(world, "other_customer", events))
    if route.per_alert:
        assert r.status_code == 404, f"{route.name}: {r.status_code} {r.text}"
        # Indistinguishable from an id that does not exist at all.
        missing = await _call(
            world,
            route,
            "00000000-0000-0000-0000-000000000000",
            _headers(world, "other_customer", events),
        )
        assert missing.status_code == 404
        assert r.json() == missing.json()
    else:
        assert r.status_code == 200, r.text
        body = r.json()
        if route.name == "list_alerts":
            ids = [i["alert_id"] for i in body["items"]]
            assert ids == [world.other_alert], "another customer's list shows only their own alert"
        else:
            assert body["open_alerts"] == 1
            assert body["most_severe"]["alert_id"] == world.other_alert
    # Whatever the other customer tried, the owner's alert is unchanged.
    mine = (await api.get_alert(world.owner, world.untouched)).json()
    assert mine["acknowledged"] is False
    assert mine["resolution"] is None
    assert mine["remedy"] is None
    rr = await api.client.get(
        f"/v1/me/alerts/{world.untouched}/remedy", headers=api.auth(world.owner)
    )
    assert rr.status_code == 404


@pytest.mark.parametrize("case", UNAUTHENTICATED)
@pytest.mark.parametrize("route", ROUTES, ids=[r.name for r in ROUTES])
async def test_unauthenticated_calls_are_refused(
    world: World, route: Route, case: str, events
) -> None:
    r = await _call(world, route, world.untouched, _headers(world, case, events))
    assert r.status_code == 401, f"{route.name}/{case}: {r.status_code} {r.text}"
    assert r.headers.get("WWW-Authenticate", "").startswith("Bearer")
    assert world.untouched not in r.text
    mine = (await world.api.get_alert(world.owner, world.untouched)).json()
    assert mine["acknowledged"] is False and mine["resolution"] is None and mine["remedy"] is None
