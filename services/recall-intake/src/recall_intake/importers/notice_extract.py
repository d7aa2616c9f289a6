"""The notice items regulators state in words: where and when a product was sold, the incidents
and injuries, the helpline. Pure; every value read carries its provenance (``Extracted``), and what
is not plain is left out (an operator adds it when reviewing the draft).

CPSC's records say "Sold at Home Depot stores nationwide and online at www.homedepot.com from
January 2020 through March 2021 for about $40", "The firm has received 12 reports of the chargers
overheating, including 2 reports of minor burns" and "Contact Ryobi toll-free at 877-220-6697 ...
or online at www.ryobitools.com"; FDA's ``distribution-pattern`` is "Nationwide" or a list of
states.
"""

from __future__ import annotations

import re
from datetime import date

from recall_intake.importers.extract import _DATE, Extracted, parse_date_token

_SOLD_AT = re.compile(r"^\s*(?:sold|distributed)\s+(?:exclusively\s+)?(?:at|by|through)\s+", re.I)
# The sale period: "from January 2020 through March 2021", "between 05/2019 and 06/2020".
_PERIOD = re.compile(
    r"\b(?:from|between)\s+(?P<a>.{3,30}?)\s+(?:through|to|until|and|-)\s+(?P<b>.{3,30}?)"
    r"(?=\s+for\b|[.,;]|$)",
    re.I,
)
_PRICE_TAIL = re.compile(r"\s+for\s+(?:about|approximately|between|from|under)?\s*\$.*$", re.I)

_PHONE = re.compile(
    r"(?<![\d-])(?:\+\d{1,3}[\s.-]?)?(?:1[\s.-])?\(?\d{3}\)?[\s.-]\d{3}[\s.-]\d{4}(?![\d-])"
)
_URL = re.compile(r"\b(?:https?://|www\.)[^\s,;()\"<>\u201c\u201d]+", re.I)

_NUMBER_WORDS = dict(
    zip(
        ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"),
        range(11),
        strict=True,
    )
)
_COUNT = r"(?P<n>\d[\d,]*|" + "|".join(_NUMBER_WORDS) + r")"
_REPORTS = re.compile(r"\breceived\s+" + _COUNT + r"\s+(?:reports?|incidents?|complaints?)\b", re.I)
_INJURIES = re.compile(
    _COUNT + r"\s+(?:reports?\s+of\s+)?(?:\w+\s+)?(?:injuries|injury|burns?|lacerations?)\b", re.I
)
_NO_INJURIES = re.compile(
    r"\bno\s+(?:injuries|incidents\s+or\s+injuries)\s+(?:have\s+been\s+)?"
    r"reported\b",
    re.I,
)


def _count(word: str) -> int:
    w = word.lower()
    return _NUMBER_WORDS[w] if w in _NUMBER_WORDS else int(w.replace(",", ""))


def _day_span(text: str) -> tuple[date, date] | None:
    m = _DATE.fullmatch(text.strip())
    return parse_date_token(m) if m else None


def extract_sale(text: str, field: str) -> list[Extracted]:
    """Where and when: ``sale_channels`` (the text without its period and price) and ``sold`` (a
    ``DateWindow`` dict) when both ends of the period are dates or months."""
    t = " ".join(text.split())
    if not t:
        return []
    out: list[Extracted] = []
    channels = t
    m = _PERIOD.search(t)
    if m:
        first, last = _day_span(m["a"]), _day_span(m["b"])
        if first and last and first[0] <= last[1]:
            window = {"start": first[0].isoformat(), "end": last[1].isoformat()}
            out.append(Extracted("sold", field, m.group(0), window))
            channels = t[: m.start()] + t[m.end() :]
    channels = _SOLD_AT.sub("", _PRICE_TAIL.sub("", channels)).strip(" .,;")
    if channels:
        out.append(Extracted("sale_channels", field, t, [channels[:500]]))
    return out


def extract_helpline(text: str, field: str) -> list[Extracted]:
    """The first phone number (``helpline_phone``) and web address (``helpline_url``, made
    https://) of a consumer-contact text."""
    out: list[Extracted] = []
    if m := _PHONE.search(text):
        out.append(Extracted("helpline_phone", field, m.group(0), m.group(0).strip()))
    if m := _URL.search(text):
        url = m.group(0).rstrip(".")
        https = "https://" + re.sub(r"^https?://", "", url, flags=re.I)
        out.append(Extracted("helpline_url", field, url, https))
    return out


def extract_incidents(text: str, field: str) -> list[Extracted]:
    """The incidents text itself, and the counts when stated plainly: "received 12 reports"
    (``incidents_reported``), "including 2 reports of minor burns" or "No injuries have been
    reported" (``injuries_reported``)."""
    t = " ".join(text.split())
    if not t:
        return []
    out = [Extracted("incidents", field, t, t[:20_000])]
    if m := _REPORTS.search(t):
        out.append(Extracted("incidents_reported", field, m.group(0), _count(m["n"])))
    if m := _NO_INJURIES.search(t):
        out.append(Extracted("injuries_reported", field, m.group(0), 0))
    elif m := _INJURIES.search(t):
        out.append(Extracted("injuries_reported", field, m.group(0), _count(m["n"])))
    return out
