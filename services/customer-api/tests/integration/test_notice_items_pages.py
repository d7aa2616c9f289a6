"""The alert page states every notice item of a full recall, in English and German, and marks the
seller's words that are not in the page's language."""

from __future__ import annotations

from datetime import date

import pytest

from recall_shared import events as ev

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

ITEMS = dict(
    product_description="A 1.7 l electric kettle.",
    brand="Acme",
    identifier_location="The model and lot number are printed under the base.",
    units_affected=12500,
    sold=ev.DateWindow(start=date(2025, 1, 6), end=date(2025, 9, 30)),
    sale_channels=["online at shop.example"],
    incidents="Reports of the base overheating; two minor burns.",
    incidents_reported=14,
    injuries_reported=2,
    helpline_phone="+49 800 123 4567",
    helpline_url="https://acme.example/recall",
)


async def test_the_alert_page_states_every_item(api, events, customer_id) -> None:
    alert = events.alert(customer_id, title="Kettle KX-1")
    texts = {"de": ev.LocalizedText(incidents="Berichte über überhitzte Sockel.")}
    recall = alert.recall.model_copy(update={**ITEMS, "texts": texts})
    alert = alert.model_copy(update={"recall": recall})
    await api.raise_alert(alert)
    cookie = api.page_cookie(customer_id)
    page = f"/recalls/{alert.alert_id}"

    en = (await api.client.get(page + "?lang=en", headers=cookie)).text
    for text in (
        "Brand: Acme",
        "Where to find the model, lot or serial number: The model and lot number are printed",
        "Units affected: 12,500",
        "Sold from 6 Jan 2025 to 30 Sept 2025",
        "Where it was sold: online at shop.example",
        "Incidents and injuries: Reports of the base overheating",
        "Incidents reported: 14",
        "Injuries reported: 2",
        '<a href="tel:+498001234567">+49 800 123 4567</a>',
        '<a href="https://acme.example/recall">https://acme.example/recall</a>',
        "please pass this notice on to them",
    ):
        assert text in en, text

    de = (await api.client.get(page + "?lang=de", headers=cookie)).text
    for text in (
        "Zu diesem Rückruf",
        "Marke: Acme",
        "Betroffene Stückzahl: 12.500",
        "Verkauft vom 06.01.2025 bis 30.09.2025",
        "Vorfälle und Verletzungen: Berichte über überhitzte Sockel.",
        "geben Sie diesen Hinweis bitte an die neue Besitzerin",
        # not translated by the seller: shown in English, marked as such
        '<span lang="en">The model and lot number are printed under the base.</span> '
        "<em>(auf Englisch: es wurde keine Übersetzung bereitgestellt)</em>",
        # so are the recall's own texts, with a note saying so
        '<p lang="en">The base can overheat and cause burns.</p>',
        "Einige Texte dieses Rückrufs sind auf Englisch: Der Verkäufer hat keine Übersetzung",
    ):
        assert text in de, text
    assert "Übersetzung" not in en and '<p lang="en">' not in en
