"""The notice items of a recall as lines of text in a customer's language, free of I/O: what the
notices and the pages both show beside the title, hazard, stop-using and remedies (brand, where the
identifiers are printed, units, sale period and channels, incidents, helpline, references, the
request to pass the notice on).

Seller-written items (where the identifiers are, incidents, channels) come from
``RecallContent.texts`` in the customer's language when given, else in the recall's own language,
and then say so (``ItemLine.lang`` and ``note``): the fallback is shown, not hidden.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from recall_shared.events import LocalizedText, RecallContent
from recall_shared.i18n import (
    LOCALES,
    Catalogs,
    Messages,
    format_date,
    format_number,
    language,
    language_name,
    pick_locale,
)
from recall_shared.messages import SOURCE


@functools.cache
def catalogs() -> Catalogs:
    """Read once per process: the catalogs are files of the installed package."""
    return Catalogs("recall_shared", SOURCE)


@dataclass(frozen=True)
class ItemLine:
    """One item as a line: ``before`` + ``value`` + ``after`` (the value is what the recall says,
    the rest the translated wording around it), a link (phone, web) or an image when it has one,
    and the language of the value when it is the seller's words in another language than the
    customer's (``lang``, with a ``note`` saying so)."""

    item: str
    before: str
    value: str = ""
    after: str = ""
    href: str = ""
    image: str = ""
    lang: str = ""
    note: str = ""

    @property
    def text(self) -> str:
        return self.before + self.value + self.after


_SLOT = "\x00"


def _line(item: str, wording: str, value: str = "", **kw: str) -> ItemLine:
    """``wording`` is a translated string with one placeholder: the value goes in its place."""
    before, _, after = wording.format_map(_Slot()).partition(_SLOT)
    return ItemLine(item, before, value, after, **kw)


class _Slot(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return _SLOT


def translation(content: RecallContent, lang: str) -> LocalizedText | None:
    """The seller's translation for a language: the exact tag, else any of that language."""
    wanted = lang.replace("_", "-").lower()
    by_key = {k.replace("_", "-").lower(): v for k, v in content.texts.items()}
    return by_key.get(wanted) or next(
        (v for k, v in by_key.items() if k.split("-")[0] == wanted.split("-")[0]), None
    )


MAIN_TEXTS = ("title", "product_description", "hazard", "stop_using", "consumer_contact")


@dataclass(frozen=True)
class RemedyText:
    """A remedy's instructions as a customer reading one language gets them: translated, or the
    seller's own with their language (``lang``, for the element's ``lang`` attribute)."""

    type: str
    instructions: str
    lang: str = ""


def remedy_texts(content: RecallContent, lang: str | None) -> list[RemedyText]:
    """Each remedy's instructions in ``lang`` where the seller translated them, else in the
    recall's own language and marked so."""
    loc = pick_locale(lang)
    own = language(content.locale) or content.locale
    tr = translation(content, loc) if own != loc else None
    out = []
    for r in content.remedies:
        translated = tr.remedy_instructions.get(r.type, "") if tr else ""
        left = own != loc and bool(r.instructions) and not translated
        out.append(RemedyText(r.type, translated or r.instructions, own if left else ""))
    return out


def untranslated(content: RecallContent, lang: str | None) -> dict[str, str]:
    """For each main text, and the remedies' instructions (``remedy_instructions``): the recall's
    own language code when a customer reading ``lang`` gets it untranslated, else "" (for
    ``lang`` attributes and an honest note)."""
    loc = pick_locale(lang)
    own = language(content.locale) or content.locale
    tr = translation(content, loc) if own != loc else None

    def left(field: str) -> bool:
        return own != loc and bool(getattr(content, field)) and not (tr and getattr(tr, field))

    out = {f: own if left(f) else "" for f in MAIN_TEXTS}
    out["remedy_instructions"] = next((r.lang for r in remedy_texts(content, lang) if r.lang), "")
    return out


def untranslated_locales(content: RecallContent) -> list[str]:
    """The interface languages whose readers would get some of the seller's texts in another
    language (main texts, remedy instructions or worded notice items): what a seller may still
    translate. The notices and pages then say so (``fallback_note``, ``ItemLine.note``)."""
    return [
        loc
        for loc in LOCALES
        if any(untranslated(content, loc).values())
        or any(x.lang for x in notice_items(content, loc))
    ]


def fallback_note(content: RecallContent, lang: str | None) -> str:
    """The note "Some of this recall's texts are in English: ..." when any is untranslated."""
    if not any(untranslated(content, lang).values()):
        return ""
    loc = pick_locale(lang)
    name = language_name(content.locale, loc)
    return catalogs().messages(loc)["texts_fallback"].format(language=name)


def _https(url: str) -> str:
    return url if url[:8].lower() == "https://" else ""


def _tel(phone: str) -> str:
    return "tel:" + "".join(c for c in phone if c.isdigit() or c == "+")


def notice_items(content: RecallContent, lang: str | None) -> list[ItemLine]:
    """The items the content states, in notice order; absent ones are left out."""
    loc = pick_locale(lang)
    s: Messages = catalogs().messages(loc)
    own = language(content.locale) or content.locale
    tr = translation(content, loc) if own != loc else None

    def seller(field: str) -> tuple[str | list[str], str, str]:
        """The seller's value of a field, and the language and note to show it with."""
        translated = getattr(tr, field) if tr else None
        if translated or own == loc:
            return translated or getattr(content, field), "", ""
        name = language_name(content.locale, loc)
        return getattr(content, field), own, s["in_language"].format(language=name)

    def worded(item: str, field: str) -> ItemLine | None:
        value, value_lang, note = seller(field)
        if not value:
            return None
        text = "; ".join(value) if isinstance(value, list) else value
        return _line(item, s[item], text, lang=value_lang, note=note)

    out: list[ItemLine | None] = []
    if content.brand:
        out.append(_line("brand", s["brand"], content.brand))
    out.append(worded("identifier_location", "identifier_location"))
    if image := _https(content.identifier_location_image):
        out.append(_line("identifier_location_image", s["identifier_location.image"], image=image))
    if content.units_affected is not None:
        out.append(_line("units", s["units"], format_number(content.units_affected, loc)))
    if sold := content.sold:
        start = format_date(sold.start, loc) if sold.start else ""
        end = format_date(sold.end, loc) if sold.end else ""
        key = "sold" if start and end else "sold.from" if start else "sold.until"
        out.append(ItemLine("sale_period", s[key].format(start=start, end=end)))
    out.append(worded("sale_channels", "sale_channels"))
    out.append(worded("incidents", "incidents"))
    for key, count in (
        ("incidents.reported", content.incidents_reported),
        ("injuries.reported", content.injuries_reported),
    ):
        if count is not None:
            out.append(_line(key, s[key], format_number(count, loc)))
    if phone := content.helpline_phone:
        out.append(_line("helpline_phone", s["helpline.phone"], phone, href=_tel(phone)))
    if url := _https(content.helpline_url):
        out.append(_line("helpline_url", s["helpline.url"], url, href=url))
    if content.regulator_references:
        references = ", ".join(f"{r.agency} {r.number}" for r in content.regulator_references)
        out.append(_line("references", s["references"], references))
    if content.pass_it_on:
        out.append(ItemLine("pass_it_on", s["pass_it_on"]))
    return [x for x in out if x is not None]
