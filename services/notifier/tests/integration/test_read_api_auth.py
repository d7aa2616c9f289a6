"""The read API answers operators only: it names recipients and their remedy state, and alert ids
can be computed, so an open route would tell anyone who bought a recalled product."""

from __future__ import annotations

import uuid

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

ROUTES = ("/v1/alerts/{id}/notices", "/v1/alerts/{id}/reminders")


@pytest.mark.parametrize("route", ROUTES)
async def test_without_a_key_it_is_401(svc, route: str) -> None:
    r = await svc.client.get(route.format(id=uuid.uuid4()), headers={"X-Api-Key": ""})
    assert r.status_code == 401, r.text
    assert r.json()["error"] == "unauthorized"
    r = await svc.client.get(route.format(id=uuid.uuid4()), headers={"X-Api-Key": "rak_unknown"})
    assert r.status_code == 401, r.text


@pytest.mark.parametrize("route", ROUTES)
async def test_a_seller_key_is_403_and_an_operator_key_answers(svc, route: str) -> None:
    seller_key = await svc.issue_key("seller", "seller-1")
    r = await svc.client.get(route.format(id=uuid.uuid4()), headers={"X-Api-Key": seller_key})
    assert r.status_code == 403, r.text
    r = await svc.client.get(route.format(id=uuid.uuid4()))  # the client's operator key
    assert r.status_code == 200 and r.json() == [], r.text
