"""A recall that ends is shown for what it is on the public pages: withdrawn (recall.closed.v1 with
``withdrawn``: issued in error, no longer recalled) with its date and reason, without the label
check or the remedies; closed (completed) as closed; in the page, the index and the feed."""

from __future__ import annotations

from datetime import UTC, datetime
from xml.etree import ElementTree as ET

import pytest

from recall_shared import events as ev
from recall_shared.testing import eventually

from .test_public_pages import ATOM, published, snapshot

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

REASON = "Issued in error: the lots named tested safe."


async def ended(api, recall: ev.RecallSnapshot, marker: str, **closing: object) -> str:
    url = await published(api, recall)
    when = datetime(2026, 11, 28, 15, tzinfo=UTC)
    await api.publish(ev.RecallClosed(recall=recall, closed_at=when, **closing))

    async def shown():
        r = await api.client.get(url)
        return r if marker in r.text else None

    await eventually(shown, timeout=15, interval=0.1)
    return url


def feed_entry(xml: bytes, recall_id: str) -> tuple[str, str]:
    for entry in ET.fromstring(xml).iter(f"{ATOM}entry"):
        if entry.findtext(f"{ATOM}id") == f"urn:uuid:{recall_id}":
            return entry.findtext(f"{ATOM}title") or "", entry.findtext(f"{ATOM}summary") or ""
    raise AssertionError(f"no feed entry for {recall_id}")


async def test_a_withdrawn_recall_says_so_everywhere_and_offers_nothing_to_check(api) -> None:
    recall = snapshot(title="Heater HW-2")
    url = await ended(api, recall, "withdrawn on", withdrawn=True, reason=REASON)
    page = (await api.client.get(url)).text
    assert "This recall was withdrawn on 28 Nov 2026: the product is no longer recalled." in page
    assert "Stop using this product" not in page
    assert f"Reason given: {REASON}" in page
    assert "Am I affected?" not in page and "pass this notice on" not in page
    assert "This recall has been closed." not in page
    asked = await api.client.get(url, params={"gtin": "00012345678905", "lot": "L150"})
    assert "Your unit is affected" not in asked.text

    german = (await api.client.get(url, params={"lang": "de"})).text
    assert "Dieser Rückruf wurde am 28.11.2026 zurückgezogen" in german

    index = (await api.client.get("/public/recalls")).text
    item = index[index.index(f'href="{url}?lang=en"') :].split("</li>")[0]
    assert "Withdrawn" in item and "Closed" not in item

    title, summary = feed_entry(
        (await api.client.get("/public/recalls.atom")).content, recall.recall_id
    )
    assert title == "Heater HW-2 (Withdrawn)"
    assert summary.startswith("This recall was withdrawn on 28 Nov 2026") and REASON in summary
    assert "stop using" not in summary


async def test_a_closed_recall_is_closed_in_the_feed_and_keeps_its_instructions(api) -> None:
    recall = snapshot(title="Heater HC-3")
    url = await ended(api, recall, "This recall has been closed.")
    page = (await api.client.get(url)).text
    assert "withdrawn" not in page.lower() and "Am I affected?" in page
    title, summary = feed_entry(
        (await api.client.get("/public/recalls.atom")).content, recall.recall_id
    )
    assert title == "Heater HC-3 (Closed)"
    assert summary.startswith("Unplug the kettle and stop using it.")


async def test_a_customers_closed_alert_says_its_recall_was_withdrawn(
    api, events, customer_id
) -> None:
    alert = events.alert(customer_id)
    recall = snapshot().model_copy(update={"recall_id": alert.recall_id})
    await api.raise_alert(alert)
    await ended(api, recall, "withdrawn on", withdrawn=True, reason=REASON)
    closed = ev.AlertClosed(
        alert_id=alert.alert_id,
        customer_id=customer_id,
        recall_id=alert.recall_id,
        closed_at=datetime.now(UTC),
    )
    await api.publish(closed)
    await api.wait_for_alert(customer_id, alert.alert_id, status="closed")
    cookie = api.page_cookie(customer_id)
    page = (await api.client.get(f"/recalls/{alert.alert_id}", headers=cookie)).text
    assert "This recall was withdrawn: it was issued in error" in page
    assert "This recall has been closed." not in page
    listed = (await api.client.get("/recalls", headers=cookie)).text
    assert "This recall was withdrawn: it was issued in error" in listed
