"""The public recall pages from recalls.v1: without sign-in, one page per published recall (closed
shown as such), the index, the Atom feed, schema.org JSON-LD, ETag/304, and nothing personal."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, date, datetime
from xml.etree import ElementTree as ET

import pytest

from recall_shared import events as ev
from recall_shared.testing import eventually

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

ATOM = "{http://www.w3.org/2005/Atom}"


def snapshot(version: int = 1, title: str = "Acme kettle KX-1", **content: object):
    return ev.RecallSnapshot(
        recall_id=str(uuid.uuid4()),
        version=version,
        seller_id="seller-1",
        published_at=datetime(2026, 11, 20, 9, tzinfo=UTC),
        rules=[
            ev.ScopeRule(
                product_ids=["prod-kettle"],
                gtins=["00012345678905"],
                model_numbers=["KX-1"],
                lots=ev.CodeRule(ranges=[ev.CodeRange(first="L100", last="L199")]),
            )
        ],
        content=ev.RecallContent.model_validate(
            {
                "title": title,
                "hazard": "The base can overheat and cause burns.",
                "severity": "high",
                "stop_using": "Unplug the kettle and stop using it.",
                "remedies": [{"type": "refund_with_return"}],
                "brand": "Acme",
                "sold": {"start": date(2025, 1, 6), "end": date(2025, 9, 30)},
                "helpline_phone": "+49 800 123 4567",
                "texts": {"de": {"title": "Acme Wasserkocher KX-1"}},
                **content,
            }
        ),
    )


async def published(api, recall: ev.RecallSnapshot) -> str:
    await api.publish(ev.RecallPublished(recall=recall))
    url = f"/public/recalls/{recall.recall_id}"

    async def shown():
        r = await api.client.get(url)
        return r if r.status_code == 200 else None

    await eventually(shown, timeout=15, interval=0.1)
    return url


async def test_a_published_recall_has_a_public_page_with_json_ld(api) -> None:
    recall = snapshot()
    url = await published(api, recall)
    page = await api.client.get(url)
    assert page.headers["cache-control"] == "public, max-age=300"
    assert "set-cookie" not in page.headers
    html = page.text
    for text in (
        "Acme kettle KX-1",
        "Unplug the kettle and stop using it.",
        "Barcode (GTIN) 00012345678905",
        "Model KX-1",
        "Lot numbers: L100 to L199",
        "Brand: Acme",
        "Sold from 6 Jan 2025 to 30 Sept 2025",
        "please pass this notice on",
    ):
        assert text in html, text
    found = re.search(r'<script type="application/ld\+json">(.*?)</script>', html)
    assert found, "no JSON-LD on the page"
    ld = json.loads(found[1])
    assert ld["@type"] == "WebPage" and ld["about"]["brand"]["name"] == "Acme"
    assert ld["about"]["gtin14"] == "00012345678905" and ld["url"].endswith(url)
    de = await api.client.get(url, headers={"Accept-Language": "de"})
    assert '<html lang="de">' in de.text and "Acme Wasserkocher KX-1" in de.text
    assert "Verkauft vom 06.01.2025 bis 30.09.2025" in de.text


async def test_etag_answers_304_and_changes_with_the_recall(api) -> None:
    recall = snapshot()
    url = await published(api, recall)
    first = await api.client.get(url)
    tag = first.headers["etag"]
    assert tag.startswith('W/"')
    again = await api.client.get(url, headers={"If-None-Match": tag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == tag
    other_language = await api.client.get(
        url, headers={"If-None-Match": tag, "Accept-Language": "fr"}
    )
    assert other_language.status_code == 200

    amended = recall.model_copy(update={"version": 2})
    await api.publish(ev.RecallAmended(recall=amended))

    async def changed():
        r = await api.client.get(url, headers={"If-None-Match": tag})
        return r if r.status_code == 200 else None

    assert (await eventually(changed, timeout=15, interval=0.1)).headers["etag"] != tag


async def test_a_closed_recall_is_shown_closed_and_a_replay_does_not_reopen_it(api) -> None:
    recall = snapshot()
    url = await published(api, recall)
    await api.publish(ev.RecallClosed(recall=recall, closed_at=datetime.now(UTC)))

    async def closed():
        r = await api.client.get(url)
        return r if "This recall has been closed." in r.text else None

    await eventually(closed, timeout=15, interval=0.1)
    await api.publish(ev.RecallPublished(recall=recall))  # a replay of the first event
    marker = snapshot()
    await published(api, marker)  # later on the same topic: the replay has been applied
    assert "This recall has been closed." in (await api.client.get(url)).text
    index = (await api.client.get("/public/recalls")).text
    assert f'href="{url}?lang=en"' in index and "Closed" in index


async def test_index_and_atom_feed_list_the_published_recalls(api) -> None:
    recall = snapshot(title="Heater HX-9")
    url = await published(api, recall)
    index = await api.client.get("/public/recalls")
    assert index.status_code == 200 and "Heater HX-9" in index.text
    assert 'type="application/atom+xml"' in index.text
    feed = await api.client.get("/public/recalls.atom")
    assert feed.headers["content-type"].startswith("application/atom+xml")
    root = ET.fromstring(feed.content)
    assert root.tag == f"{ATOM}feed"
    entries = {e.findtext(f"{ATOM}id"): e for e in root.findall(f"{ATOM}entry")}
    entry = entries[f"urn:uuid:{recall.recall_id}"]
    assert entry.findtext(f"{ATOM}title") == "Heater HX-9"
    assert entry.find(f"{ATOM}link").get("href").endswith(url)  # type: ignore[union-attr]
    tag = feed.headers["etag"]
    assert (
        await api.client.get("/public/recalls.atom", headers={"If-None-Match": tag})
    ).status_code == 304


async def test_no_sign_in_and_nothing_personal(api, events, customer_id) -> None:
    recall = snapshot(title="<script>alert(1)</script> kettle")
    url = await published(api, recall)
    alert = events.alert(customer_id, recall_id=recall.recall_id)
    await api.raise_alert(alert)
    signed_in = await api.client.get(url, headers=api.page_cookie(customer_id))
    for page in (signed_in, await api.client.get(url)):
        assert page.status_code == 200
        assert customer_id not in page.text and alert.lines[0].order_id not in page.text
        assert alert.alert_id not in page.text and "Sign out" not in page.text
        assert "<script>alert(1)</script>" not in page.text  # escaped, in HTML and JSON-LD
    missing = await api.client.get(f"/public/recalls/{uuid.uuid4()}")
    assert missing.status_code == 404 and "Recall not found" in missing.text
    too_long = await api.client.get("/public/recalls/" + "x" * 300)
    assert too_long.status_code == 404


async def test_anyone_can_check_a_label_on_the_public_page(api) -> None:
    recall = snapshot()  # GTIN 00012345678905, lots L100 to L199
    url = await published(api, recall)

    async def answer(**typed: str):
        r = await api.client.get(url, params=typed)
        assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
        assert "etag" not in r.headers
        return r.text

    assert "Your product is affected by this recall." in await answer(
        gtin="0 12345 67890 5", lot="l 150"
    )
    assert "your product is not affected by this recall" in await answer(
        gtin="00012345678905", lot="L200"
    )
    assert "Please also give: lot number." in await answer(gtin="00012345678905")
    other = await answer(gtin="4006381333931", lot="L150")
    assert "not affected" in other  # another product's barcode
    de = await api.client.get(url, params={"gtin": "00012345678905", "lang": "de"})
    assert "Bitte geben Sie auch an: Chargennummer." in de.text
    typed_back = await answer(gtin="00012345678905", lot='"><script>x</script>')
    assert "<script>x</script>" not in typed_back  # the typed value is escaped
