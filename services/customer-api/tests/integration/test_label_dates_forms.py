"""Am I affected? by the dates on the label, from the pages' forms: a recall limited to a
best-before window asks for that date (and only that one) on the alert page and on the public page,
answers affected / not affected from it as the API does, and a malformed date is the form again
(422) with the message at its field and what was typed kept, never a 500."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

import pytest

from recall_shared import events as ev

from .test_public_pages import published, snapshot

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
# Best before 1 to 31 March 2027, whatever the lot (a food or cosmetics recall).
BEST_BEFORE = ev.DateWindow(start=date(2027, 3, 1), end=date(2027, 3, 31))


async def alert_with_best_before(api, events, customer_id):
    alert = events.alert(customer_id, tier="confirmed")
    recall = ev.RecallSnapshot(
        recall_id=alert.recall_id,
        version=1,
        seller_id="seller-1",
        published_at=datetime(2026, 11, 20, tzinfo=UTC),
        rules=[ev.ScopeRule(product_ids=["prod-kettle"], best_before=BEST_BEFORE)],
        content=alert.recall,
    )
    await published(api, recall)
    await api.raise_alert(alert)
    return alert


async def form_poster(api, customer_id, alert):
    cookie = api.page_cookie(customer_id)
    page = (await api.client.get(f"/recalls/{alert.alert_id}", headers=cookie)).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)[1]  # type: ignore[index]

    async def post(**typed: str):
        return await api.client.post(
            f"/recalls/{alert.alert_id}/label-check",
            data={**typed, "csrf_token": token, "return_to": "detail"},
            headers={**cookie, **FORM},
        )

    return page, post


async def test_the_alert_page_asks_for_the_best_before_date_and_answers_from_it(
    api, events, customer_id
) -> None:
    alert = await alert_with_best_before(api, events, customer_id)
    page, post = await form_poster(api, customer_id, alert)
    field = f'id="best_before-{alert.alert_id}"'
    assert f'<label for="best_before-{alert.alert_id}">Best before date</label>' in page
    assert f'<input type="date" {field} name="best_before"' in page
    assert 'name="manufactured_on"' not in page and 'name="expires_on"' not in page
    listed = await api.client.get("/recalls", headers=api.page_cookie(customer_id))
    assert f'<input type="date" {field} name="best_before"' in listed.text  # the list's form too

    r = await post(best_before="2027-03-15")
    assert r.status_code == 303 and "done=label_confirmed" in r.headers["location"]
    r = await post(best_before="2027-04-02")
    assert r.status_code == 303 and "done=label_not_affected" in r.headers["location"]
    resolved = (await api.get_alert(customer_id, alert.alert_id)).json()
    assert resolved["resolution"] == "not_affected"


async def test_the_alert_page_refuses_a_malformed_date_with_the_form_again(
    api, events, customer_id
) -> None:
    alert = await alert_with_best_before(api, events, customer_id)
    _, post = await form_poster(api, customer_id, alert)
    for bad in ("15.03.2027", "2027-02-30", "soon"):
        r = await post(lot="L 7", best_before=bad)
        assert r.status_code == 422, (bad, r.status_code)
        error_id = f"best_before-{alert.alert_id}-error"
        assert f'id="{error_id}"' in r.text and f'aria-describedby="{error_id}"' in r.text
        assert "This is not a date. Please give it as year-month-day" in r.text
        assert "One of the dates you typed is not a date." in r.text  # the summary, role=alert
        assert f'value="{bad}"' in r.text and 'value="L 7"' in r.text  # kept as typed
        assert f'href="/recalls/{alert.alert_id}?lang=de"' in r.text  # the page's own address
    assert (await api.get_alert(customer_id, alert.alert_id)).json()["resolution"] is None


async def test_the_public_page_answers_from_the_best_before_date(api) -> None:
    recall = snapshot()
    recall = recall.model_copy(
        update={
            "rules": [
                ev.ScopeRule(
                    product_ids=["prod-kettle"], gtins=["00012345678905"], best_before=BEST_BEFORE
                )
            ]
        }
    )
    url = await published(api, recall)
    plain = (await api.client.get(url)).text
    assert '<input type="date" id="best_before-public" name="best_before"' in plain
    assert 'name="expires_on"' not in plain

    async def answer(**typed: str):
        return await api.client.get(url, params={"gtin": "00012345678905", **typed})

    affected = await answer(best_before="2027-03-31")
    assert affected.status_code == 200 and "Your product is affected" in affected.text
    assert affected.headers["cache-control"] == "no-store"
    later = await answer(best_before="2027-04-01")
    assert "your product is not affected by this recall" in later.text
    assert "Please also give: best-before date." in (await answer()).text

    bad = await answer(best_before="31/03/2027")
    assert bad.status_code == 422 and bad.headers["cache-control"] == "no-store"
    assert 'aria-describedby="best_before-public-error"' in bad.text
    assert 'value="31/03/2027"' in bad.text and 'value="00012345678905"' in bad.text
    assert "Your product is" not in bad.text  # no answer from a date that is not one
    fr = await answer(best_before="demain", lang="fr")
    assert fr.status_code == 422 and "Ce n&#39;est pas une date." in fr.text


async def test_a_date_the_scope_does_not_ask_for_is_still_shown_when_typed(api) -> None:
    url = await published(api, snapshot())  # lots only: no date field
    assert 'type="date"' not in (await api.client.get(url)).text
    r = await api.client.get(url, params={"lot": "L150", "expires_on": "x"})
    assert r.status_code == 422
    assert 'aria-describedby="expires_on-public-error"' in r.text
