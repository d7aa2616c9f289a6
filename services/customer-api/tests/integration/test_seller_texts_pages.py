"""The seller's texts per locale on the pages: a remedy's instructions the seller did not translate
are shown in the recall's language, marked (``lang``) and said so, on the alert page and the public
page; translated ones are the reader's."""

from __future__ import annotations

import pytest

from recall_shared import events as ev
from recall_shared.testing import eventually

from .test_public_pages import published, snapshot

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

NOTE = "Einige Texte dieses Rückrufs sind auf Englisch"
DE = ev.LocalizedText(
    title="Wasserkocher KX-1",
    product_description="Ein Wasserkocher.",
    hazard="Der Sockel kann überhitzen.",
    stop_using="Ziehen Sie den Stecker.",
    consumer_contact="rueckruf@acme.example",
)
REMEDIES = [ev.Remedy(type="replacement", instructions="We send a new one within 10 days.")]


async def test_the_alert_page_marks_untranslated_remedy_instructions(
    api, events, customer_id
) -> None:
    alert = events.alert(customer_id, remedies=("replacement",))
    recall = alert.recall.model_copy(update={"texts": {"de": DE}, "remedies": REMEDIES})
    alert = alert.model_copy(update={"recall": recall})
    await api.raise_alert(alert)
    page = f"/recalls/{alert.alert_id}?lang=de"
    de = (await api.client.get(page, headers=api.page_cookie(customer_id))).text
    assert 'lang="en">We send a new one within 10 days.</p>' in de and NOTE in de

    translated = DE.model_copy(
        update={"remedy_instructions": {"replacement": "Wir senden binnen 10 Tagen Ersatz."}}
    )
    later = alert.model_copy(
        update={
            "alert_version": 2,
            "recall": recall.model_copy(update={"texts": {"de": translated}}),
        }
    )
    await api.publish(events.updated(later))

    async def shown():
        text = (await api.client.get(page, headers=api.page_cookie(customer_id))).text
        return text if "Wir senden binnen 10 Tagen Ersatz." in text else None

    de = await eventually(shown, timeout=15, interval=0.1)
    assert NOTE not in de and 'lang="en">We send' not in de


async def test_the_public_page_marks_them_too(api) -> None:
    recall = snapshot(remedies=REMEDIES, texts={"de": DE.model_dump()})
    url = await published(api, recall)
    de = (await api.client.get(url, params={"lang": "de"})).text
    assert '<span lang="en">We send a new one within 10 days.</span>' in de and NOTE in de
