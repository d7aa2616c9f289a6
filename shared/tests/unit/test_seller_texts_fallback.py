"""The seller's own texts per locale: a remedy's instructions come translated where the seller gave
them, else in the recall's language marked so and said so (the fallback shown, not hidden); and the
languages whose readers would meet such a fallback are named for the seller."""

from __future__ import annotations

from recall_shared import events as ev
from recall_shared.notice_view import (
    RemedyText,
    fallback_note,
    remedy_texts,
    untranslated,
    untranslated_locales,
)

DE_MAIN = ev.LocalizedText(
    title="Wasserkocher",
    product_description="Ein Wasserkocher.",
    hazard="Verbrennungsgefahr.",
    stop_using="Nicht mehr benutzen.",
    consumer_contact="recalls@acme.example",
)


def content(texts: dict[str, ev.LocalizedText]) -> ev.RecallContent:
    return ev.RecallContent(
        title="Kettle",
        product_description="A kettle.",
        hazard="Burns.",
        severity="high",
        stop_using="Stop using it.",
        consumer_contact="recalls@acme.example",
        remedies=[
            ev.Remedy(type="refund_with_return", instructions="Send it back in its box."),
            ev.Remedy(type="replacement"),
        ],
        texts=texts,
    )


def test_untranslated_instructions_are_marked_and_said_so_even_when_the_rest_is_translated() -> (
    None
):
    c = content({"de": DE_MAIN})
    assert remedy_texts(c, "de") == [
        RemedyText("refund_with_return", "Send it back in its box.", "en"),
        RemedyText("replacement", ""),
    ]
    assert untranslated(c, "de")["remedy_instructions"] == "en"
    assert untranslated(c, "de")["hazard"] == ""
    assert "Englisch" in fallback_note(c, "de")


def test_translated_instructions_are_the_readers_and_need_no_note() -> None:
    de = DE_MAIN.model_copy(
        update={"remedy_instructions": {"refund_with_return": "In der Originalverpackung zurück."}}
    )
    c = content({"de": de})
    assert remedy_texts(c, "de")[0] == RemedyText(
        "refund_with_return", "In der Originalverpackung zurück."
    )
    assert fallback_note(c, "de") == ""
    assert remedy_texts(c, "en")[0] == RemedyText(
        "refund_with_return", "Send it back in its box."
    )  # the recall's own language: never marked


def test_the_languages_left_to_translate_are_named() -> None:
    de = DE_MAIN.model_copy(
        update={"remedy_instructions": {"refund_with_return": "In der Originalverpackung zurück."}}
    )
    assert untranslated_locales(content({"de": de})) == ["fr", "es", "it", "nl", "pl"]
    assert "de" in untranslated_locales(content({"de": DE_MAIN}))  # its instructions are not
    assert "en" not in untranslated_locales(content({}))
