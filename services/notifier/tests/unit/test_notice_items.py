"""Every item a recall notice must state (GPSR Art. 36(2), 16 CFR 1115) is in the English and the
German notice of a full recall, in text and HTML."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from notifier.render import NoticeRenderer, RenderedNotice
from recall_shared import events as ev
from recall_shared.notice_items import NOTICE_ITEMS, missing

from .test_render import PORTAL


def full_alert() -> ev.AlertState:
    content = ev.RecallContent(
        title="Acme kettle KX-1",
        product_description="A 1.7 l electric kettle.",
        hazard="The base can overheat and cause burns.",
        severity="high",
        stop_using="Unplug the kettle and do not use it again.",
        remedies=[ev.Remedy(type="refund_with_return", instructions="Use the label we send.")],
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
        texts={
            "de": ev.LocalizedText(
                product_description="Ein elektrischer Wasserkocher, 1,7 l.",
                hazard="Der Sockel kann überhitzen und Verbrennungen verursachen.",
                stop_using="Ziehen Sie den Stecker und benutzen Sie den Kocher nicht mehr.",
                remedy_instructions={"refund_with_return": "Nutzen Sie unser Etikett."},
                identifier_location="Modell und Charge stehen unter dem Sockel.",
                incidents="Berichte über überhitzte Sockel; zwei leichte Verbrennungen.",
                sale_channels=["online bei shop.example"],
            )
        },
    )
    assert missing(content) == []
    line = ev.AffectedLine(
        order_id="ord-1",
        line_id="l-1",
        product_id="prod-kettle",
        title="Acme kettle KX-1",
        gtin="00012345678905",
        model_number="KX-1",
        seller_id="s-1",
        purchased_at=datetime(2025, 3, 14, 10, tzinfo=UTC),
        units=1,
        unit_price=Decimal("19.99"),
        currency="EUR",
        lot="L42",
    )
    return ev.AlertState(
        alert_id="al-1",
        alert_version=1,
        customer_id="c-1",
        recall_id="rc-1",
        recall_version=1,
        seller_id="s-1",
        tier="confirmed",
        lines=[line],
        recall=content,
    )


EXPECTED: dict[str, dict[str, str]] = {
    "en": {
        "brand": "Brand: Acme",
        "product_description": "A 1.7 l electric kettle.",
        "identifiers": "GTIN 00012345678905",
        "identifier_location": "The model and lot number are printed under the base.",
        "units_affected": "Units affected: 12,500",
        "sale_period": "Sold from 6 Jan 2025 to 30 Sept 2025",
        "sale_channels": "Where it was sold: online at shop.example",
        "incidents": "Reports of the base overheating; two minor burns.",
        "hazard": "The base can overheat and cause burns.",
        "stop_using": "Unplug the kettle and do not use it again.",
        "remedies": "A full refund of the price you paid, with a prepaid return label",
        "helpline": "+49 800 123 4567",
        "pass_it_on": "please pass this notice on to them",
    },
    "de": {
        "brand": "Marke: Acme",
        "product_description": "Ein elektrischer Wasserkocher, 1,7 l.",
        "identifiers": "GTIN 00012345678905",
        "identifier_location": "Modell und Charge stehen unter dem Sockel.",
        "units_affected": "Betroffene Stückzahl: 12.500",
        "sale_period": "Verkauft vom 06.01.2025 bis 30.09.2025",
        "sale_channels": "Verkauft über: online bei shop.example",
        "incidents": "Berichte über überhitzte Sockel; zwei leichte Verbrennungen.",
        "hazard": "Der Sockel kann überhitzen und Verbrennungen verursachen.",
        "stop_using": "Ziehen Sie den Stecker und benutzen Sie den Kocher nicht mehr.",
        "remedies": "Volle Erstattung des gezahlten Preises, mit frankiertem Rücksendeetikett",
        "helpline": "+49 800 123 4567",
        "pass_it_on": "geben Sie diesen Hinweis bitte an die neue Besitzerin",
    },
}


def test_the_expectations_cover_every_item() -> None:
    for expected in EXPECTED.values():
        assert set(NOTICE_ITEMS) <= set(expected)


@pytest.mark.parametrize("lang", ["en", "de"])
def test_every_required_item_is_in_the_notice(lang: str) -> None:
    rendered = NoticeRenderer(PORTAL).render(
        full_alert(), kind="initial", locale=lang, recipient_name="Alex", recipient_role="purchaser"
    )
    html = rendered.html.replace("&#39;", "'")
    for item, text in EXPECTED[lang].items():
        assert text in rendered.text, (item, text)
        assert text in html, (item, text)
    assert "https://acme.example/recall" in rendered.text
    assert 'href="https://acme.example/recall"' in rendered.html
    assert 'href="tel:+498001234567"' in rendered.html


def test_the_sellers_untranslated_texts_are_marked_and_said_so() -> None:
    renderer = NoticeRenderer(PORTAL)

    def render(locale: str) -> RenderedNotice:
        return renderer.render(
            full_alert(),
            locale=locale,
            kind="initial",
            recipient_name="Alex",
            recipient_role="purchaser",
        )

    fr = render("fr")
    note = (
        "Certains textes de ce rappel sont en anglais : le vendeur n'en a pas fourni de traduction."
    )
    assert note in fr.text and note in fr.html.replace("&#39;", "'")
    assert '<p lang="en">The base can overheat and cause burns.</p>' in fr.html
    de = render("de")
    # German translates hazard, description, stop-using; the title stays English and is marked.
    assert "<p>Der Sockel kann überhitzen und Verbrennungen verursachen.</p>" in de.html
    assert '<h1 style="font-size: 22px;" lang="en">Acme kettle KX-1</h1>' in de.html
    assert "Einige Texte dieses Rückrufs sind auf Englisch" in de.text
    en = render("en")
    assert "translation" not in en.text and ' lang="en"' not in en.html.split("<body", 1)[1]
