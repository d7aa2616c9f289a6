"""What every regulator parser produces: an :class:`ImportedRecall`, or a :class:`RecordError`."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import orjson

from recall_intake.domain import severity_for
from recall_intake.importers.extract import Extracted, Flag
from recall_shared import events as ev
from recall_shared.validation import unsafe_text_reason

# The agency codes used in RegulatorReference.agency and RegulatorRecord.agency (and by
# severity_for).
CPSC = "CPSC"
FDA = "FDA"
EU_SAFETY_GATE = "EU_SAFETY_GATE"


class RecordError(Exception):
    """The record is unusable: not a recall (an error returned as a record), no reference, wrong
    shape."""


@dataclass
class ImportedRecall:
    agency: str
    reference: str
    format: str
    raw: dict[str, Any]
    title: str
    hazard: str
    severity: str
    published_on: date | None = None
    classification: str = ""
    product_description: str = ""
    hazard_type: str = ""
    units_affected: int | None = None
    url: str = ""
    brand: str = ""
    kind: str = "recall"
    images: list[str] = field(default_factory=list)
    consumer_contact: str = ""
    stop_using: str = ""
    remedies: list[dict[str, Any]] = field(
        default_factory=lambda: [{"type": "refund_on_destruction"}]
    )
    rules: list[dict[str, Any]] = field(
        default_factory=list
    )  # ScopeRule dicts; empty if nothing reliable
    extra_references: list[str] = field(
        default_factory=list
    )  # further numbers of the same record (FDA items)
    extracted: list[Extracted] = field(default_factory=list)
    flags: list[Flag] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    match_keys: list[str] = field(
        default_factory=list
    )  # "gtin:..." / "model:brand:MODEL" for cross-agency links
    # Notice items the record states in words (recall_intake.importers.notice_extract).
    notice_items: list[Extracted] = field(default_factory=list)

    def read_notice_items(self, found: list[Extracted]) -> None:
        """Keep what a notice_extract function found, with its provenance (the first of a kind
        wins)."""
        for e in found:
            if all(n.kind != e.kind for n in self.notice_items):
                self.notice_items.append(e)
                self.extracted.append(e)

    @property
    def content_hash(self) -> str:
        return hashlib.sha256(orjson.dumps(self.raw, option=orjson.OPT_SORT_KEYS)).hexdigest()

    def references(self) -> list[ev.RegulatorReference]:
        out = [
            ev.RegulatorReference(
                agency=self.agency,
                number=self.reference,
                url=self.url,
                published_on=self.published_on,
                classification=self.classification,
            )
        ]
        out += [
            ev.RegulatorReference(
                agency=self.agency,
                number=n,
                url=self.url,
                published_on=self.published_on,
                classification=self.classification,
            )
            for n in self.extra_references
            if n != self.reference
        ]
        return out

    def content(self) -> ev.RecallContent:
        return ev.RecallContent(
            kind=self.kind,
            title=self.title[:500],
            product_description=self.product_description[:20_000],
            hazard=self.hazard[:20_000],
            hazard_type=self.hazard_type[:100],
            severity=self.severity,
            stop_using=self.stop_using,
            remedies=[ev.Remedy.model_validate(r) for r in self.remedies],
            units_affected=self.units_affected,
            images=[i for i in self.images if i][:20],
            consumer_contact=self.consumer_contact[:20_000],
            regulator_references=self.references(),
            locale="en",
            brand=clean_brand(self.brand)[:500],
            **{e.kind: e.value for e in self.notice_items},
        )

    def provenance(self) -> dict[str, Any]:
        """Where every extracted value came from: {"field", "text", "value"} per value, grouped by
        kind."""
        by_kind: dict[str, list[dict[str, Any]]] = {}
        for e in self.extracted:
            by_kind.setdefault(e.kind, []).append(e.as_dict())
        return {
            "agency": self.agency,
            "reference": self.reference,
            "format": self.format,
            "published_on": self.published_on.isoformat() if self.published_on else None,
            "content_hash": self.content_hash,
            "extracted": by_kind,
            "flagged": [f.as_dict() for f in self.flags],
            "warnings": list(self.warnings),
            "match_keys": sorted(set(self.match_keys)),
        }


# ------------------------------------------------------------------ helpers shared by the parsers

_HAZARD_TYPES: list[tuple[str, str]] = [
    (r"listeria|salmonella|e\. ?coli|contaminat|bacteria|mold|steril", "contamination"),
    (r"undeclared|allergen", "undeclared_allergen"),
    (r"electrocution|electric shock|shock hazard", "electric_shock"),
    (r"fire|flame|ignit", "fire"),
    (r"burn|scald", "burn"),
    (r"chok", "choking"),
    (r"suffocat|asphyxia", "suffocation"),
    (r"strangulat", "strangulation"),
    (r"entrap", "entrapment"),
    (r"lacerat|amputat|\bcut", "laceration"),
    (r"ingest|swallow", "ingestion"),
    (r"crash|collision", "crash"),
    (r"\bfall", "fall"),
    (r"explo|projectile", "explosion"),
    (r"chemical|prohibited|toxic|\blead\b|phthalate|cadmium|nickel|formaldehyde|bmhca", "chemical"),
    (r"injur", "injury"),
]


def hazard_type_for(*texts: str) -> str:
    text = " ".join(t for t in texts if t).lower()
    for pattern, kind in _HAZARD_TYPES:
        if re.search(pattern, text):
            return kind
    return ""


def remedies_for(text: str) -> list[dict[str, Any]]:
    """The remedies a record's text names; refund on proof of destruction when it names none."""
    t = text.lower()
    out: list[dict[str, Any]] = []
    if "refund" in t:
        out.append(
            {
                "type": "refund_with_return"
                if re.search(r"return\w*[^.]{0,60}refund|refund[^.]{0,60}return", t)
                else "refund_on_destruction"
            }
        )
    if "replacement" in t or "replace " in t:
        out.append({"type": "replacement"})
    if "repair" in t:
        out.append({"type": "repair"})
    return out or [{"type": "refund_on_destruction"}]


def stop_using_for(product: str, product_type: str = "") -> str:
    product = product.strip() or "the recalled product"
    kind = product_type.lower()
    if kind == "food":
        return f"Do not eat or serve {product}. Throw it away or keep it for the remedy."
    if kind in ("drugs", "drug", "biologics"):
        return (
            f"Do not use {product} from the affected lots. If it is a prescribed medicine, talk to "
            "your doctor or pharmacist before you stop taking it."
        )
    return (
        f"Stop using {product} immediately and keep it away from children until you have followed "
        "the remedy."
    )


def brand_keys(*brands: str) -> set[str]:
    """A brand's comparable key: its first significant word, lower case ("ECHO Inc., of ..." ->
    "echo")."""
    out = set()
    for b in brands:
        b = re.split(r",\s*(?:of|dba|d/b/a)\b", b or "", maxsplit=1)[0]
        words = [w for w in re.findall(r"[a-z0-9]+", b.lower()) if w not in {"the", "a", "an"}]
        if words and len(words[0]) >= 2:
            out.add(words[0])
    return out


def clean_brand(brand: str) -> str:
    return re.split(r",\s*(?:of|dba|d/b/a)\b", brand or "", maxsplit=1)[0].strip(" ,")


# ------------------------------------------------------------------ field types and ranges

# Identifiers (recall numbers, GTINs) are short; a model field may list several models.
MAX_IDENTIFIER_LENGTH = 100
MAX_MODEL_FIELD_LENGTH = 2000
# Dates a regulator's record can carry: no consumer product recall predates 1900, none is dated
# after 2100.
EARLIEST_DATE = date(1900, 1, 1)
LATEST_DATE = date(2100, 12, 31)


def json_type(value: Any) -> str:
    """How a JSON value's type reads in an error message."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, float):
        return "a fractional number"
    if isinstance(value, int):
        return "a number"
    return "text" if isinstance(value, str) else type(value).__name__


def identifier(value: Any, field: str, *, max_length: int = MAX_IDENTIFIER_LENGTH) -> str:
    """An identifier a record gives (a recall number, a model number, a GTIN): text, or a whole
    number where the source uses numbers; "" when absent. Anything else refuses the record
    (RecordError naming the field): an object or array (``{"a": 1}`` must not become the reference
    ``"{'a': 1}"``), a boolean, a fractional or negative number, control characters, or more than
    ``max_length``."""
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise RecordError(f"{field} must be text or a whole number, not {json_type(value)}")
    if isinstance(value, int):
        if value < 0:
            raise RecordError(f"{field} must not be a negative number ({value})")
        text = str(value)
    else:
        text = value.strip()
    if len(text) > max_length:
        raise RecordError(f"{field} is longer than {max_length} characters")
    reason = unsafe_text_reason(text)
    if reason is None and any(unicodedata.category(c) == "Cc" for c in text):
        reason = "must not contain control characters"
    if reason:
        raise RecordError(f"{field} {reason}")
    return text


def text_field(value: Any, field: str) -> str:
    """A free-text field: text or a number (as written); "" when absent. An object or array refuses
    the record instead of being stored as its Python spelling."""
    if value is None:
        return ""
    if isinstance(value, dict | list | bool):
        raise RecordError(f"{field} must be text, not {json_type(value)}")
    return str(value)


def checked_date(day: date, field: str) -> date:
    if not EARLIEST_DATE <= day <= LATEST_DATE:
        raise RecordError(
            f"{field} {day.isoformat()} is out of range ({EARLIEST_DATE.isoformat()} to "
            f"{LATEST_DATE.isoformat()})"
        )
    return day


def parse_iso_date(value: Any, field: str = "date") -> date | None:
    """A date given as ``YYYY-MM-DD`` or ``YYYYMMDD`` (a time may follow); None when absent or
    empty. Text that is no such date, an impossible day, a date out of range (1900 to 2100) or a
    value that is not text refuses the record (RecordError naming the field)."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise RecordError(f"{field} must be a date as text (YYYY-MM-DD), not {json_type(value)}")
    m = re.match(r"(\d{4})-?(\d{2})-?(\d{2})(?![\d-])", value.strip())
    if not m:
        raise RecordError(f"{field} is not a date (YYYY-MM-DD): {value[:40]!r}")
    try:
        day = date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        raise RecordError(f"{field} is not a calendar date: {value[:40]!r}") from None
    return checked_date(day, field)


def severity(agency: str, classification: str, hazard: str) -> str:
    return severity_for(agency, classification, hazard)
