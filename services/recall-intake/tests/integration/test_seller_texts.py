"""The seller's own texts per language (``content.texts``): named by language tag (anything else
is a 422 naming the field), and the recall says which interface languages still meet the recall's
own language (``untranslated_locales``)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration

GERMAN = {
    "title": "Acme Wasserkocher KX-1",
    "hazard": "Der Sockel kann überhitzen und Verbrennungen verursachen.",
    "stop_using": "Ziehen Sie den Stecker und benutzen Sie den Wasserkocher nicht mehr.",
}


async def _seller(intake, unique) -> tuple[str, dict[str, str]]:
    seller_id, key = await intake.seller_key()
    product = unique("prod")
    await intake.listing(product, [seller_id])
    return product, {"X-Api-Key": key}


async def test_the_recall_names_the_languages_left_to_translate(
    intake, make_recall_body, unique
) -> None:
    product, headers = await _seller(intake, unique)
    body = make_recall_body(product)
    body["content"]["texts"] = {"de": GERMAN}
    r = await intake.client.post("/v1/recalls", json=body, headers=headers)
    assert r.status_code == 201, r.text
    assert r.json()["untranslated_locales"] == ["fr", "es", "it", "nl", "pl"]


async def test_a_translation_under_a_name_that_is_no_language_tag_is_refused(
    intake, make_recall_body, unique
) -> None:
    product, headers = await _seller(intake, unique)
    for field, content in (
        ("German", {"texts": {"German": GERMAN}}),
        ("locale", {"locale": "english"}),
    ):
        body = make_recall_body(product)
        body["content"].update(content)
        r = await intake.client.post("/v1/recalls", json=body, headers=headers)
        assert r.status_code == 422 and field in r.text, r.text
