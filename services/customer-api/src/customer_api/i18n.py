"""The pages' languages: their strings from the gettext catalogs in ``locale/`` (English source in
``messages.py``, machinery in ``recall_shared.i18n``), dates and money by Babel, and how a request's
language is picked.

Seller-written texts (title, hazard, ...) are not here: they come from the recall, in
``RecallContent.texts[lang]`` when the seller translated them, else in the recall's main language.
"""

from __future__ import annotations

import functools

from customer_api.messages import SOURCE
from recall_shared.i18n import (
    DEFAULT_LOCALE,
    LANGUAGE_NAMES,
    LOCALES,
    Catalogs,
    Messages,
    format_date,
    format_money,
    parse_accept_language,
)

SUPPORTED = LOCALES
DEFAULT = DEFAULT_LOCALE
fmt_date = format_date
fmt_money = format_money

__all__ = [
    "DEFAULT",
    "LANGUAGE_NAMES",
    "SUPPORTED",
    "catalogs",
    "fmt_date",
    "fmt_money",
    "parse_accept_language",
    "strings",
    "supported",
]


@functools.cache
def catalogs() -> Catalogs:
    """Read once per process: the catalogs are files of the installed package."""
    return Catalogs("customer_api", SOURCE)


def strings(lang: str) -> Messages:
    return catalogs().messages(lang)


def supported(lang: str | None) -> str | None:
    return lang if lang in SUPPORTED else None
