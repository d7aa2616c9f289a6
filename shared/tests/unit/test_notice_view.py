"""The notice items as lines in every language: complete catalogs, what a full recall states, and
the seller's untranslated words shown as such."""

from __future__ import annotations

from datetime import date

import pytest

from recall_shared import events as ev
from recall_shared.i18n import LOCALES
from recall_shared.notice_items import NOTICE_ITEMS, missing
from recall_shared.notice_view import catalogs, notice_items


def full_recall(**kw: object) -> ev.RecallContent:
    base: dict[str, object] = dict(
        title="Acme kettle KX-1",
        product_description="A 1.7 l electric kettle.",
        hazard="The base can overheat and cause burns.",
        severity="high",
        stop_using="Unplug the kettle and do not use it again.",
        remedies=[ev.Remedy(type="refund_with_return")],
        brand="Acme",
        identifier_location="The model and lot number are printed under the base.",
        identifier_location_image="https://img.example/label.jpg",
        units_affected=12500,
        sold=ev.DateWindow(start=date(2025, 1, 6), end=date(2025, 9, 30)),
        sale_channels=["online at shop.example"],
        incidents="Reports of the base overheating; two minor burns.",
        incidents_reported=14,
        injuries_reported=2,
        helpline_phone="+49 800 123 4567",
        helpline_url="https://acme.example/recall",
        regulator_references=[ev.RegulatorReference(agency="CPSC", number="25-123")],
        texts={
            "de": ev.LocalizedText(
                identifier_location="Modell und Charge stehen unter dem Sockel.",
                incidents="Berichte über überhitzte Sockel; zwei leichte Verbrennungen.",
                sale_channels=["online bei shop.example"],
            )
        },
    )
    base.update(kw)
    return ev.RecallContent.model_validate(base)


@pytest.mark.parametrize("lang", [x for x in LOCALES if x != "en"])
def test_every_language_translates_every_item(lang: str) -> None:
    assert catalogs().missing(lang) == [] and catalogs().unused(lang) == []


def test_a_full_recall_misses_nothing() -> None:
    assert missing(full_recall()) == []
    bare = full_recall(
        brand="", identifier_location="", identifier_location_image="", units_affected=None,
        sold=None, sale_channels=[], incidents="", incidents_reported=None,
        injuries_reported=None, helpline_phone="", helpline_url="", pass_it_on=False,
    )  # fmt: skip
    assert missing(bare) == [
        i
        for i in NOTICE_ITEMS
        if i not in ("product_description", "hazard", "stop_using", "remedies")
    ]


def test_items_in_german_with_german_dates_numbers_and_texts() -> None:
    lines = {x.item: x for x in notice_items(full_recall(), "de")}
    assert lines["brand"].text == "Marke: Acme"
    assert lines["units"].text == "Betroffene Stückzahl: 12.500"
    assert lines["sale_period"].text == "Verkauft vom 06.01.2025 bis 30.09.2025"
    assert lines["identifier_location"].text.endswith("Modell und Charge stehen unter dem Sockel.")
    assert lines["identifier_location"].lang == ""  # translated: no fallback to announce
    assert lines["helpline_phone"].href == "tel:+498001234567"
    assert lines["helpline_url"].href == "https://acme.example/recall"
    assert lines["references"].text == "Amtliches Aktenzeichen: CPSC 25-123"
    assert lines["pass_it_on"].text.startswith("Wenn Sie dieses Produkt verschenkt")


def test_an_untranslated_seller_text_says_its_language() -> None:
    lines = {x.item: x for x in notice_items(full_recall(), "fr")}
    where = lines["identifier_location"]
    assert where.text.endswith("printed under the base.") and where.lang == "en"
    assert where.note == "(en anglais : aucune traduction n'a été fournie)"
    assert lines["sale_period"].text == "Vendu du 6 janv. 2025 au 30 sept. 2025"
    english = {x.item: x for x in notice_items(full_recall(), "en")}
    assert english["identifier_location"].lang == "" and english["units"].text.endswith("12,500")


def test_only_https_links_and_images() -> None:
    lines = {
        x.item
        for x in notice_items(
            full_recall(helpline_url="http://acme.example", identifier_location_image="x"), "en"
        )
    }
    assert "helpline_url" not in lines and "identifier_location_image" not in lines
