"""Identifiers, lots, serials and date windows from regulators' prose, free of I/O.

Every value found is returned with its provenance: the record field it came from, the exact snippet
and the normalised value. The functions are conservative: a wrong identifier frightens customers who
are not affected, so a code that cannot be read with confidence is *flagged* (returned as a
:class:`Flag`) and never used. Nothing is guessed: no year is added to a date that has none, no
check digit is invented for a code that does not have one, and a lot list introduced by "including
but not limited to" is not taken as the complete scope.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from recall_shared.identifiers import check_digit, model_key, normalise_gtin
from recall_shared.scope import Collation, collation_key, key_order


@dataclass(frozen=True)
class Extracted:
    # gtin | model_number | lots | serials | expiry | best_before | manufactured | units_affected
    # | reference
    kind: str
    field: str
    text: str
    value: Any
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        out = {"field": self.field, "text": self.text, "value": self.value}
        if self.note:
            out["note"] = self.note
        return out


@dataclass(frozen=True)
class Flag:
    kind: str
    field: str
    text: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "field": self.field, "text": self.text, "reason": self.reason}


# ================================================================== GTIN / UPC / EAN

_LABEL = r"\b(?:UPC|EAN|GTIN|ISBN|bar\s?code)(?:[\s-]*(?:code|no\.?|number|A))?\s*[#:]?\s*[#:]?\s*"
_DIGITS = r"(\d(?:[ \-]?\d){4,16})"
_LABELLED = re.compile(_LABEL + _DIGITS + r"(?![\d])", re.IGNORECASE)
# Printed barcode forms without a label: UPC-A "7 05432 00194 5" / "0-11110-91128-5", EAN-13 "4
# 006381 333931".
_PRINTED = re.compile(
    r"(?<![\d\-/.])(\d[ \-]\d{5}[ \-]\d{5}[ \-]\d|\d[ \-]\d{6}[ \-]\d{6})(?![\d\-/])"
)
_BARE_RUN = re.compile(r"(?<![\d\-/.,])(\d{12,13})(?![\d\-/]|\.\d)")


def read_gtin(raw: str) -> tuple[str | None, str, str]:
    """(GTIN-14 or None, status, message) for one code as written.

    status: valid | leading_zero_restored | check_digit_added | invalid. An 11-digit UPC-A is
    ambiguous: a leading zero or the check digit may have been dropped. When the digits verify as
    written (leading zero dropped) that reading is taken, since it adds nothing that was not
    printed; otherwise the check digit is added, as recall_shared.identifiers.normalise_gtin does,
    and flagged.
    """
    digits = re.sub(r"\D", "", raw)
    if len(digits) in (7, 11) and check_digit(digits[:-1]) == int(digits[-1]):
        alt = digits + str(check_digit(digits))
        return (
            digits.zfill(14),
            "leading_zero_restored",
            f"{raw!r} has {len(digits)} digits and verifies with a leading zero restored; read as "
            f"{digits.zfill(12 if len(digits) == 11 else 8)} (if its check digit was dropped "
            f"instead it would be {alt})",
        )
    result = normalise_gtin(raw)
    return result.gtin14, result.status, result.message


def extract_gtins(text: str, field: str) -> tuple[list[Extracted], list[Flag]]:
    """UPC/EAN/GTIN codes: labelled ones ("UPC # 0-11110-91128-5"), printed barcode forms ("7 05432
    00194 5") and bare 12/13-digit runs that verify. Labelled or printed codes that cannot be read
    are flagged."""
    found: list[Extracted] = []
    flags: list[Flag] = []
    taken: list[tuple[int, int]] = []
    seen: set[str] = set()

    def overlaps(a: int, b: int) -> bool:
        return any(a < y and x < b for x, y in taken)

    def consider(snippet: str, code: str, span: tuple[int, int], *, labelled: bool) -> None:
        taken.append(span)
        gtin, status, message = read_gtin(code)
        if gtin is None:
            if labelled:
                flags.append(Flag("gtin", field, snippet, message or "not a GTIN"))
            return
        if gtin in seen:
            return
        seen.add(gtin)
        found.append(Extracted("gtin", field, snippet, gtin, "" if status == "valid" else message))
        if status != "valid":
            flags.append(Flag("gtin", field, snippet, f"{status}: {message}"))

    for m in _LABELLED.finditer(text):  # an ISBN-13 is an EAN-13 (978/979): read like any other
        consider(m.group(0).strip(), m.group(1), m.span(), labelled=True)
    for m in _PRINTED.finditer(text):
        if not overlaps(*m.span()):
            consider(m.group(1), m.group(1), m.span(), labelled=True)
    for m in _BARE_RUN.finditer(text):
        if overlaps(*m.span()):
            continue
        taken.append(m.span())
        gtin, status, _ = read_gtin(m.group(1))
        if (
            gtin and status == "valid" and gtin not in seen
        ):  # an unlabelled run is used only when it verifies
            seen.add(gtin)
            found.append(
                Extracted("gtin", field, m.group(1), gtin, "unlabelled digit run that verifies")
            )
    return found, flags


# ================================================================== model numbers

_MODEL_KW = re.compile(
    r"\b(?:model|item|style)s?(?!\s+years?\b)(?:[\s-]*(?:numbers?|nos?\.|#)s?)?(?:\s+(?:are|is|include))?\s*[:#]?\s*",
    re.IGNORECASE,
)
_CODE_TOKEN = re.compile(r"#?([A-Z0-9][A-Z0-9\-./]*[A-Z0-9]|[A-Z0-9]{3,})")
_MEASURE = re.compile(
    r"^\d+(?:[-\s]?(?:mm|cm|m|in|inch|ml|l|oz|cups?|lights?|packs?|pieces?|pcs?|w|v|mah|grams?|g|kg|lbs?|shots?|"
    r"drawers?|steps?|lit(?:er|re)s?|quarts?|qt|ft|years?|pints?))$",
    re.IGNORECASE,
)
_BATTERY = re.compile(r"^(?:CR|LR|SR|BR|AG)\d{3,4}$")
_YEAR = re.compile(r"^(?:19|20)\d{2}$")


def model_is_usable(code: str, *, keyword: bool) -> bool:
    """Whether a code is specific enough to name a product on its own. After an explicit
    "model"/"item" keyword a short code is accepted (C21, 7280); a bare field value must be stronger
    (PB-5810H, 82411614)."""
    key = model_key(code)
    if not key or _MEASURE.match(code.strip()) or _BATTERY.match(key) or " " in code.strip():
        return False
    has_digit = any(c.isdigit() for c in key)
    has_alpha = any(c.isalpha() for c in key)
    if not has_digit:
        return False
    if keyword:
        if not has_alpha:
            return len(key) >= 4 and not _YEAR.match(key)
        return len(key) >= 3
    if not has_alpha:
        return len(key) >= 6
    return len(key) >= 4


def extract_model_numbers(text: str, field: str, *, items: bool = True) -> list[Extracted]:
    """Model, item and style numbers after their keyword: "model numbers are UDC3CW in cool white,
    and UDC3WW in warm white" -> UDC3CW, UDC3WW; "Model PB-5810H"; "models 502-30, 522-09 ... and
    5392-20"."""
    out: list[Extracted] = []
    seen: set[str] = set()
    for kw in _MODEL_KW.finditer(text):
        if not items and not kw.group(0).lower().startswith("model"):
            # e.g. FDA's "Item no. 71136" is a firm's internal number, not a product identifier
            continue
        tail_start = kw.end()
        stop = re.search(
            r"[;\n]|\.(?:\s|$)|\b(?:with|serial|sold|lot|date|between|from|for\s+use)\b",
            text[tail_start:],
        )
        tail = text[tail_start : tail_start + (stop.start() if stop else 160)][:160]
        pieces = re.split(r",\s*(?:and\s+|or\s+)?|\s+(?:and|or|&)\s+", tail)
        codes: list[str] = []
        for piece in pieces:
            piece = piece.strip()
            m = _CODE_TOKEN.match(piece)
            if (
                not m
                or re.search(r"[a-z]", m.group(1))
                or not model_is_usable(m.group(1), keyword=True)
            ):
                break
            codes.append(m.group(1).rstrip(".-/"))
        if not codes:
            continue
        end = text.find(codes[-1], tail_start) + len(codes[-1])
        snippet = text[kw.start() : end]
        for code in codes:
            key = model_key(code)
            if key and key not in seen:
                seen.add(key)
                out.append(Extracted("model_number", field, snippet.strip(), code))
    return out


def model_from_field(value: str | None, field: str) -> tuple[Extracted | None, Flag | None]:
    """A model number given in its own field (CPSC/Safety Gate seeds): used only when specific
    enough."""
    if not value or not value.strip():
        return None, None
    code = value.strip().rstrip(",.;").strip()
    if model_is_usable(code, keyword=False):
        return Extracted("model_number", field, value, code), None
    return None, Flag(
        "model_number",
        field,
        value,
        "too generic to identify a product on its own "
        "(no digit, a size or battery type, or too short)",
    )


# ================================================================== dates

_MONTHS = {
    m: i
    for i, m in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"],
        start=1,
    )
}
_MON = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
_DATE = re.compile(
    r"(?P<mdy>\b(?P<m1>\d{1,2})[/-](?P<d1>\d{1,2})[/-](?P<y1>\d{4}|\d{2})\b)"
    r"|(?P<dmy>\b(?P<d2>\d{1,2})[\s-](?P<mon2>" + _MON + r")[\s-](?P<y2>\d{4})\b)"
    r"|(?P<mdy2>\b(?P<mon3>" + _MON + r")\s+(?P<d3>\d{1,2})(?:st|nd|rd|th)?,?\s+(?P<y3>\d{4})\b)"
    r"|(?P<my>\b(?P<m4>\d{1,2})[/-](?P<y4>\d{4}|\d{2})\b)"
    r"|(?P<my2>\b(?P<mon5>" + _MON + r")\s+(?P<y5>\d{4})\b)",
    re.IGNORECASE,
)


def _year(y: str) -> int:
    return int(y) if len(y) == 4 else 2000 + int(y)


def _month_span(year: int, month: int) -> tuple[date, date]:
    first = date(year, month, 1)
    nxt = date(year + (month == 12), month % 12 + 1, 1)
    return first, nxt - timedelta(days=1)


def parse_date_token(m: re.Match[str]) -> tuple[date, date] | None:
    """The days a date token covers: one day ("05/02/2012"), or a whole month ("Exp 12/2013",
    "02/13")."""
    try:
        if m["mdy"]:
            return (d := date(_year(m["y1"]), int(m["m1"]), int(m["d1"]))), d
        if m["dmy"]:
            return (d := date(int(m["y2"]), _MONTHS[m["mon2"][:3].lower()], int(m["d2"]))), d
        if m["mdy2"]:
            return (d := date(int(m["y3"]), _MONTHS[m["mon3"][:3].lower()], int(m["d3"]))), d
        if m["my"]:
            return _month_span(_year(m["y4"]), int(m["m4"]))
        if m["my2"]:
            return _month_span(int(m["y5"]), _MONTHS[m["mon5"][:3].lower()])
    except (ValueError, KeyError):
        return None
    return None


_WINDOW_KW: list[tuple[str, re.Pattern[str]]] = [
    (
        "best_before",
        re.compile(
            r"\b(?:best[\s-]+(?:if[\s-]+used[\s-]+)?(?:by|before)|use[\s-]+by|bb)\b(?:\s+dates?)?",
            re.IGNORECASE,
        ),
    ),
    (
        "expiry",
        re.compile(r"\b(?:expiration|expiry|expires|exp)\b\.?(?:\s+dates?)?", re.IGNORECASE),
    ),
    (
        "manufactured",
        re.compile(
            r"\b(?:manufactur\w*|produced|production\s+dates?|date\s+codes?|made)\b"
            r"(?:\s+(?:and\s+distributed|dated?|dates?|on|of))*",
            re.IGNORECASE,
        ),
    ),
]
_ANY_WINDOW_KW = re.compile("|".join(f"(?:{p.pattern})" for _, p in _WINDOW_KW), re.IGNORECASE)


def extract_date_windows(text: str, field: str) -> list[Extracted]:
    """Expiry, best-by and manufacturing windows: "Expiration dates from 01/19/2012 through
    05/02/2012", "Best By dates between 7/11/12 and 10/25/12", "manufactured ... between December
    15, 2010 and November 15, 2011", "Exp 12/2013" (the whole month). Several dates of one kind make
    the window that spans them. Value: {"start": iso, "end": iso}."""
    found: dict[str, list[tuple[date, date, int, int]]] = {}
    for kind, pattern in _WINDOW_KW:
        for kw in pattern.finditer(text):
            start = kw.end()
            nxt = _ANY_WINDOW_KW.search(text, start)
            end = min(len(text), start + 90, nxt.start() if nxt else len(text))
            semi = text.find(";", start, end)
            if semi != -1:
                end = semi
            tail = text[start:end]
            for dm in _DATE.finditer(tail):
                between = tail[: dm.start()]
                if re.search(r"\b(?:lot|batch|serial|units?)\b", between, re.IGNORECASE):
                    break
                span = parse_date_token(dm)
                if span:
                    found.setdefault(kind, []).append(
                        (span[0], span[1], kw.start(), start + dm.end())
                    )
    out = []
    for kind, spans in found.items():
        lo = min(s[0] for s in spans)
        hi = max(s[1] for s in spans)
        by_kw: dict[int, int] = {}
        for _, _, a, b in spans:
            by_kw[a] = max(by_kw.get(a, b), b)
        snippet = " … ".join(dict.fromkeys(text[a:b] for a, b in sorted(by_kw.items())))
        note = f"spans {len(spans)} dates" if len(spans) > 2 else ""
        out.append(
            Extracted(kind, field, snippet, {"start": lo.isoformat(), "end": hi.isoformat()}, note)
        )
    return out


# ================================================================== lots and serials

_LOT_KW = re.compile(
    r"(?<!Big )\b(?:lot|batch)(?:s|\s*(?:numbers?|nos?\.?|codes?|#\s*'?s|#))?"
    r"(?![A-Za-z])\s*(?:#\s*)?(?:'s)?\s*[:#]?\s*",
    re.IGNORECASE,
)
_SERIAL_KW = re.compile(
    r"\b(?:serial|unit)(?:s|\s*(?:numbers?|nos?\.?|#))?\s*[:#]?\s*", re.IGNORECASE
)
_ITEM_MARK = re.compile(r"^\s*(?:(?:\d{1,2}|[a-z])\)\s*(?:(?:-|,|and|to)\s*)?)+", re.IGNORECASE)
_CODE = r"[A-Z0-9](?:[A-Z0-9\-/]|\s(?=[A-Z0-9]))*"
_CODE_RE = re.compile(r"^[A-Z0-9][A-Z0-9\-/ ]{0,40}$")
_STOP = re.compile(
    r"\b(?:exp\w*|best|use\s+by|with|manufactur\w*|date|produced|sold|for|from\s+(?![A-Z0-9]))\b|[(\[]",
    re.IGNORECASE,
)
_RANGE = re.compile(
    r"(?:\bfrom\s+|\bbetween\s+)?(?P<a>"
    + _CODE
    + r")\s+(?:through|thru|to|and|-|–)\s+(?P<b>"
    + _CODE
    + r")"
)


def _is_code(token: str) -> bool:
    return bool(_CODE_RE.match(token)) and any(c.isdigit() for c in token)


def _collation(first: str, last: str) -> Collation:
    a, b = re.sub(r"[\s-]", "", first), re.sub(r"[\s-]", "", last)
    return "numeric" if a.isdigit() and b.isdigit() else "natural"


def _range_ok(first: str, last: str, collation: Collation) -> bool:
    lo, hi = collation_key(first, collation), collation_key(last, collation)
    if lo is None or hi is None:
        return False
    try:
        return key_order(lo, hi) <= 0
    except TypeError:
        return False


def _code_rule(
    kind: str, text: str, field: str, kw: re.Pattern[str]
) -> tuple[list[Extracted], list[Flag]]:
    """Explicit codes, ranges ("from 00112 through 10412", "between FFP 49 1203 0001 and FFP 49 1237
    00974") and prefixes ("beginning with 12J, 12K ...") after a lot/serial keyword. Values are
    CodeRule parts: {"values": [...]}, {"ranges": [{"first", "last"}], "collation": ...} or
    {"prefixes": [...]}."""
    out: list[Extracted] = []
    flags: list[Flag] = []
    consumed_to = 0
    for m in kw.finditer(text):
        if m.start() < consumed_to:
            continue
        if kind == "serials" and m.group(0).lower().startswith("unit") and ":" not in m.group(0):
            continue  # "units" is a quantity unless it introduces a list ("Units: 006LT46267")
        segments = text[m.end() :].split(";")
        pos = m.end()
        for n, seg in enumerate(segments):
            seg_start = pos
            pos += len(seg) + 1
            # A following ";"-segment continues the list when it starts with more codes (no new
            # keyword).
            if n > 0 and (kw.search(seg) or _ANY_WINDOW_KW.match(_ITEM_MARK.sub("", seg).strip())):
                break
            body = _ITEM_MARK.sub("", seg)
            offset = seg_start + (len(seg) - len(body))
            if n == 0 and re.match(r"\s*(?:numbers?\s+)?beginning\s+with\b", body, re.IGNORECASE):
                pm = re.match(
                    r"\s*(?:numbers?\s+)?beginning\s+with\s+(.+?)(?:\.\s|$|;)", body, re.IGNORECASE
                )
                prefixes = (
                    [
                        p
                        for p in re.split(r",\s*|\s+or\s+|\s+and\s+", pm[1].strip().rstrip("."))
                        if _is_code(p)
                    ]
                    if pm
                    else []
                )
                if prefixes and pm:
                    out.append(
                        Extracted(
                            kind,
                            field,
                            text[m.start() : offset + pm.end(1)],
                            {"prefixes": prefixes},
                        )
                    )
                    consumed_to = offset + pm.end(1)
                break
            if re.match(r"\s*(?:numbers?\s+)?ending\s+with\b", body, re.IGNORECASE):
                flags.append(
                    Flag(
                        kind,
                        field,
                        text[m.start() : offset + min(len(body), 60)],
                        "codes given by their ending cannot be stated as a rule",
                    )
                )
                break
            if re.search(
                r"not\s+limited\s+to", text[max(0, m.start() - 40) : m.start()], re.IGNORECASE
            ):
                flags.append(
                    Flag(
                        kind,
                        field,
                        text[max(0, m.start() - 40) : m.end() + 40].strip(),
                        'the list is not exhaustive ("including but not limited to"); not used as '
                        "the scope",
                    )
                )
                consumed_to = pos
                break
            stop = _STOP.search(body)
            body_cut = body[: stop.start()] if stop else body
            # A range first ...
            rm = _RANGE.match(body_cut.strip())
            lead = len(body_cut) - len(body_cut.lstrip())
            if (
                rm
                and (rm["a"] and rm["b"])
                and _is_code(rm["a"].strip())
                and _is_code(rm["b"].strip())
                and (
                    not re.search(r"\band\b", rm.group(0))
                    or re.match(r"\s*between", body_cut, re.IGNORECASE)
                )
            ):
                first, last = rm["a"].strip(), rm["b"].strip()
                collation = _collation(first, last)
                snippet = text[(m.start() if n == 0 else offset + lead) : offset + lead + rm.end()]
                if _range_ok(first, last, collation):
                    out.append(
                        Extracted(
                            kind,
                            field,
                            snippet,
                            {"ranges": [{"first": first, "last": last}], "collation": collation},
                        )
                    )
                else:
                    flags.append(
                        Flag(kind, field, snippet, f"range {first!r}..{last!r} cannot be ordered")
                    )
                consumed_to = offset + lead + rm.end()
                continue
            # ... else a list of codes.
            values = []
            for piece in re.split(r",|\s+and\s+|\s+or\s+|&|;", body_cut):
                piece = re.sub(r"\(\s*\d+\s+units?\s*\)", "", piece).strip().rstrip(".")
                piece = _ITEM_MARK.sub("", piece).strip()
                if not piece:
                    continue
                if not _is_code(piece) or len(piece.split()) > 4:
                    break
                values.append(piece)
            if not values:
                if n == 0:
                    continue
                break
            last_val = values[-1]
            end = text.find(last_val, offset) + len(last_val)
            out.append(
                Extracted(
                    kind,
                    field,
                    text[(m.start() if n == 0 else offset) : end].strip(),
                    {"values": values},
                )
            )
            consumed_to = end
    return out, flags


def extract_lots(text: str, field: str) -> tuple[list[Extracted], list[Flag]]:
    return _code_rule("lots", text, field, _LOT_KW)


def extract_serials(text: str, field: str) -> tuple[list[Extracted], list[Flag]]:
    return _code_rule("serials", text, field, _SERIAL_KW)


def merge_code_rules(parts: list[Extracted]) -> dict[str, Any] | None:
    """One CodeRule dict from several extracted parts (values, ranges and prefixes are
    alternatives). Ranges of different collations cannot share one rule: then the numeric ones are
    stated as natural, which orders zero-padded numbers the same way."""
    if not parts:
        return None
    values: list[str] = []
    ranges: list[dict[str, str]] = []
    prefixes: list[str] = []
    collations = set()
    for p in parts:
        values += p.value.get("values", [])
        ranges += p.value.get("ranges", [])
        prefixes += p.value.get("prefixes", [])
        if "collation" in p.value:
            collations.add(p.value["collation"])
    rule: dict[str, Any] = {}
    if values:
        rule["values"] = list(dict.fromkeys(values))
    if ranges:
        rule["ranges"] = ranges
    if prefixes:
        rule["prefixes"] = list(dict.fromkeys(prefixes))
    rule["collation"] = collations.pop() if len(collations) == 1 else "natural"
    return rule


# ================================================================== quantities and references

_COUNT_NOUNS = (
    r"units?|bottles?|autoinjectors?|devices?|loaves|buckets?|unit\s+cartons?|cartons?|corneas?|"
    r"pieces?|items?|packages?|pouches?|jars?|boxes"
)


def extract_units_affected(text: str | None, field: str) -> Extracted | None:
    """ "529,327 units" -> 529327; "198,648 units of A and 110,718 units of B" -> their sum.
    Weights, cases and anything less plain give None (a wrong count misleads the effectiveness
    report)."""
    if not text:
        return None
    t = text.strip()
    m = re.fullmatch(
        r"(?:approx(?:imately|\.)?\s*|about\s+)?([\d,]+)\s+("
        + _COUNT_NOUNS
        + r")(?:\s*\([^)]*\))?\.?",
        t,
        re.IGNORECASE,
    )
    if m:
        return Extracted("units_affected", field, t, int(m[1].replace(",", "")))
    parts = re.findall(r"([\d,]+)\s+units?\s+of\b", t, re.IGNORECASE)
    if len(parts) >= 2 and re.fullmatch(
        r"(?:[\d,]+\s+units?\s+of\s+[^\d]+?(?:,|\s+and\s+|$)\s*)+", t, re.IGNORECASE
    ):
        return Extracted("units_affected", field, t, sum(int(p.replace(",", "")) for p in parts))
    m = re.search(
        r"\b(?:about|approximately|approx\.)?\s*([\d,]{3,})\s+(?:units|products)\b",
        t,
        re.IGNORECASE,
    )
    if m and len(re.findall(r"\d[\d,]*", t)) == 1:
        return Extracted("units_affected", field, m.group(0).strip(), int(m[1].replace(",", "")))
    return None


FDA_RECALL_NUMBER = re.compile(r"\b([FDBZVN]-\d{2,5}-(?:\d{4}|\d{2}))\b")


def extract_fda_recall_numbers(text: str, field: str) -> list[Extracted]:
    """ "Recall # F-1336-2012" -> F-1336-2012, in the order they appear."""
    out, seen = [], set()
    for m in FDA_RECALL_NUMBER.finditer(text):
        if m[1] not in seen:
            seen.add(m[1])
            start = max(0, m.start() - 12)
            snippet = text[start : m.end()]
            snippet = (
                snippet[snippet.lower().rfind("recall") :] if "recall" in snippet.lower() else m[1]
            )
            out.append(Extracted("reference", field, snippet.strip(), m[1]))
    return out
