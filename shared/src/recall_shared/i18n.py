"""Languages: interface and notice strings from gettext catalogs (Babel), and dates, numbers and
money formatted per locale by Babel.

A service writes its English strings once, in its ``messages.py``, as ``msg(key, english)`` calls
(``pybabel extract -k msg:1c,2`` reads them: the key is the gettext context, the English the
message id). Translations live in ``<package>/locale/<lang>/LC_MESSAGES/messages.po``, committed.
They are compiled when a service loads them (in memory, as ``pybabel compile`` would), so no
``.mo`` file can be stale or forgotten. A key looks up ``pgettext(key, english)``: a translation
that is missing, fuzzy or made for another English text falls back to the English, and the
completeness test (``missing``) fails on it.
"""

from __future__ import annotations

import gettext
import io
import re
from collections.abc import Iterator, Mapping
from datetime import date, datetime
from decimal import Decimal
from importlib import resources

import babel
import babel.dates
import babel.numbers
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

LOCALES: tuple[str, ...] = ("en", "de", "fr", "es", "it", "nl", "pl")
"""The languages of the pages and notices; English is the source, the others have catalogs."""
DEFAULT_LOCALE = "en"
LANGUAGE_NAMES: dict[str, str] = {
    "en": "English",
    "de": "Deutsch",
    "fr": "Français",
    "es": "Español",
    "it": "Italiano",
    "nl": "Nederlands",
    "pl": "Polski",
}
# How each language writes dates and money. English day first, as buyers in the EU (the
# marketplace's markets) read it; the rest as CLDR has them for the language.
_FORMAT_LOCALE = {"en": "en_GB"}

_PLACEHOLDER = re.compile(r"\{(\w*)\}")


def _placeholders(text: str) -> list[str]:
    return sorted(_PLACEHOLDER.findall(text))


def msg(key: str, english: str) -> tuple[str, str]:
    """One interface string: its key and its English text (what ``pybabel extract`` reads)."""
    return key, english


def source(*messages: tuple[str, str]) -> dict[str, str]:
    """A service's English strings by key; a key given twice is a mistake."""
    out: dict[str, str] = {}
    for key, english in messages:
        if key in out:
            raise ValueError(f"message key {key!r} is defined twice")
        out[key] = english
    return out


def language(tag: str | None) -> str | None:
    """The supported language of a locale tag ('de-AT', 'pl_PL', 'FR'), or None."""
    if not tag:
        return None
    primary = tag.strip().replace("_", "-").split("-")[0].lower()
    return primary if primary in LOCALES else None


def pick_locale(tag: str | None) -> str:
    return language(tag) or DEFAULT_LOCALE


def parse_accept_language(header: str | None) -> str | None:
    """The supported language the client prefers most (q-values honoured), or None."""
    if not header:
        return None
    prefs: list[tuple[float, int, str]] = []
    for i, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        for p in params.split(";"):
            k, _, v = p.strip().partition("=")
            if k == "q":
                try:
                    q = float(v)
                except ValueError:
                    q = 0.0
        lang = language(tag)
        if lang and q > 0:
            prefs.append((-q, i, lang))
    return min(prefs)[2] if prefs else None


def _format_locale(lang: str) -> str:
    return _FORMAT_LOCALE.get(lang, lang)


def format_date(value: date | datetime, lang: str) -> str:
    """'4 Mar 2025', '04.03.2025', '4 mars 2025', '4 mar 2025', ... (CLDR medium format)."""
    day = value.date() if isinstance(value, datetime) else value
    return babel.dates.format_date(day, "medium", locale=_format_locale(lang))


def language_name(code: str, lang: str) -> str:
    """The name of a language in another: ('en', 'de') -> 'Englisch'; the code when unknown."""
    try:
        name = babel.Locale.parse(code.replace("-", "_")).get_language_name(_format_locale(lang))
    except (ValueError, babel.UnknownLocaleError):
        return code
    return name or code


def format_number(value: int | Decimal, lang: str) -> str:
    return babel.numbers.format_decimal(value, locale=_format_locale(lang))


def format_money(amount: Decimal, currency: str | None, lang: str) -> str:
    """'€1,234.50', '1.234,50 €', '1 234,50 zł', ...; without a currency, the number alone."""
    if not currency:
        return babel.numbers.format_decimal(amount, format="#,##0.00", locale=_format_locale(lang))
    return babel.numbers.format_currency(amount, currency, locale=_format_locale(lang))


class Messages(Mapping[str, str]):
    """One language's strings by key (templates read ``s.key`` or ``s["key"]``)."""

    def __init__(
        self, lang: str, english: Mapping[str, str], translations: gettext.NullTranslations
    ) -> None:
        self.lang = lang
        self._english = english
        self._translations = translations

    def __getitem__(self, key: str) -> str:
        return self._translations.pgettext(key, self._english[key])

    def __iter__(self) -> Iterator[str]:
        return iter(self._english)

    def __len__(self) -> int:
        return len(self._english)


def _compiled(catalog: Catalog) -> Translations:
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return Translations(buffer)


class Catalogs:
    """A service's catalogs, one per language, read from ``<package>/locale``."""

    def __init__(self, package: str, english: Mapping[str, str]) -> None:
        self.package = package
        self.english = dict(english)
        self.catalogs: dict[str, Catalog] = {}
        self._messages: dict[str, Messages] = {
            DEFAULT_LOCALE: Messages(DEFAULT_LOCALE, self.english, gettext.NullTranslations())
        }
        root = resources.files(package) / "locale"
        for lang in LOCALES:
            if lang == DEFAULT_LOCALE:
                continue
            po = root / lang / "LC_MESSAGES" / "messages.po"
            with po.open("rb") as fp:
                catalog = read_po(fp, locale=lang)
            self.catalogs[lang] = catalog
            self._messages[lang] = Messages(lang, self.english, _compiled(catalog))

    def messages(self, lang: str | None) -> Messages:
        return self._messages[pick_locale(lang)]

    def missing(self, lang: str) -> list[str]:
        """The keys whose translation is absent, empty, fuzzy, for another English text, or has
        other placeholders than the English: what the completeness test refuses."""
        catalog = self.catalogs[lang]
        out = []
        for key, english in self.english.items():
            entry = catalog.get(english, context=key)
            translated = "" if entry is None or entry.fuzzy else str(entry.string or "")
            if not translated or _placeholders(translated) != _placeholders(english):
                out.append(key)
        return out

    def unused(self, lang: str) -> list[str]:
        """Keys a catalog translates that the service no longer has (left over, not harmful)."""
        return [
            str(m.context)
            for m in self.catalogs[lang]
            if m.id and m.context and m.context not in self.english
        ]
