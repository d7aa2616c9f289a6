"""One parser per source shape; each turns one raw record into an :class:`ImportedRecall` or raises
:class:`RecordError`.

Shapes (samples in services/recall-intake/tests/data/regulators):

- ``cpsc``: the CPSC Recalls REST API (``RecallID``, ``RecallNumber``, ``Products`` ...) and the
  normalised CPSC records of the canon-event seeds (``authority: "CPSC"``, ``ref``, ``model`` ...).
- ``cpsc-gsa``: the retired USA.gov/GSA recalls API (``recall_number``, ``descriptions``, ``upcs``
  ...).
- ``openfda``: openFDA enforcement reports, legacy hyphenated keys (``code-info``) or current ones
  (``code_info``, ``recall_number``).
- ``safety-gate``: EU Safety Gate records (``authority: "SAFETY_GATE"``, ``ref`` like
  ``A12/02381/24``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from pydantic import ValidationError

from recall_intake.importers import extract as x
from recall_intake.importers import notice_extract
from recall_intake.importers.base import (
    CPSC,
    EU_SAFETY_GATE,
    FDA,
    MAX_MODEL_FIELD_LENGTH,
    ImportedRecall,
    RecordError,
    brand_keys,
    checked_date,
    clean_brand,
    hazard_type_for,
    identifier,
    json_type,
    parse_iso_date,
    remedies_for,
    severity,
    stop_using_for,
    text_field,
)
from recall_shared import events as ev
from recall_shared.identifiers import model_key

FORMATS = ("cpsc", "cpsc-gsa", "openfda", "safety-gate", "auto")


# ================================================================== rules from extracted values


class _Item:
    """What was found for one product of a record: identifiers and constraints, each with
    provenance."""

    def __init__(self, label: str = "") -> None:
        self.label = label
        self.gtins: list[x.Extracted] = []
        self.models: list[x.Extracted] = []
        self.lots: list[x.Extracted] = []
        self.serials: list[x.Extracted] = []
        self.windows: list[x.Extracted] = []

    def constraints_from(self, other: _Item) -> None:
        self.lots += other.lots
        self.serials += other.serials
        self.windows += other.windows

    def rule(self) -> dict[str, Any] | None:
        if not (self.gtins or self.models):
            return None
        rule: dict[str, Any] = {}
        if self.gtins:
            rule["gtins"] = sorted({g.value for g in self.gtins})
        if self.models:
            rule["model_numbers"] = list(dict.fromkeys(m.value for m in self.models))
        for name, parts in (("lots", self.lots), ("serials", self.serials)):
            merged = x.merge_code_rules(parts)
            if merged:
                rule[name] = merged
        for kind in ("expiry", "best_before", "manufactured"):
            spans = [w.value for w in self.windows if w.kind == kind]
            if spans:
                rule[kind] = {
                    "start": min(s["start"] for s in spans),
                    "end": max(s["end"] for s in spans),
                }
        return rule


def _finish(imp: ImportedRecall, items: list[_Item], brands: list[str]) -> ImportedRecall:
    """Rules from the items (validated; a rule the contract refuses is dropped with a warning), the
    record's provenance and its cross-agency match keys."""
    rules: list[dict[str, Any]] = []
    unidentified: list[str] = []
    for item in items:
        imp.extracted += item.gtins + item.models + item.lots + item.serials + item.windows
        rule = item.rule()
        if rule is None:
            unidentified.append(item.label or "a product")
            continue
        try:
            ev.ScopeRule.model_validate(rule)
        except ValidationError as exc:
            imp.warnings.append(
                f"{item.label or 'a product'}: rule dropped: {exc.errors()[0]['msg']}"
            )
            continue
        if rule not in rules:
            rules.append(rule)
    imp.rules = rules
    if rules and unidentified:
        imp.warnings.append(
            f"no identifier could be read for {', '.join(unidentified)}: not in the scope; "
            "add a rule for it before publishing"
        )
    # The same extracted value may have been found for several items: keep one provenance entry
    # each.
    seen: set[tuple[str, str, str]] = set()
    unique = []
    for e in imp.extracted:
        key = (e.kind, e.field, repr(e.value) + e.text)
        if key not in seen:
            seen.add(key)
            unique.append(e)
    imp.extracted = unique
    if not rules:
        imp.warnings.append(
            "no reliable identifier found: the draft has no rules; add one with "
            "PATCH /v1/recalls/{recall_id} before publishing"
        )
    keys = brand_keys(*brands)
    for rule in rules:
        imp.match_keys += [f"gtin:{g}" for g in rule.get("gtins", [])]
        imp.match_keys += [
            f"model:{b}:{model_key(m)}" for m in rule.get("model_numbers", []) for b in keys
        ]
    return imp


def _scan(
    item: _Item,
    text: str,
    field: str,
    *,
    identifiers: bool = True,
    constraints: bool = True,
    flags: list[x.Flag],
    item_numbers: bool = True,
) -> None:
    if not text:
        return
    if identifiers:
        gtins, gflags = x.extract_gtins(text, field)
        item.gtins += gtins
        flags += gflags
        item.models += x.extract_model_numbers(text, field, items=item_numbers)
    if constraints:
        lots, lflags = x.extract_lots(text, field)
        serials, sflags = x.extract_serials(text, field)
        item.lots += lots
        item.serials += serials
        flags += lflags + sflags
        item.windows += x.extract_date_windows(text, field)


def _model_field(raw: dict[str, Any]) -> tuple[x.Extracted | None, x.Flag | None]:
    """A record's own model field (seeds, Safety Gate), type-checked first."""
    return x.model_from_field(
        identifier(raw.get("model"), "model", max_length=MAX_MODEL_FIELD_LENGTH) or None, "model"
    )


def _short_name(text: str, limit: int = 100) -> str:
    name = re.split(r"\.\s| --- |\*\*\*|\"|;|\(", text.strip(), maxsplit=1)[0].strip(" .,:-")
    if len(name) > limit:
        cut = name[:limit]
        name = (cut.rsplit(",", 1)[0] if "," in cut else cut.rsplit(" ", 1)[0]) + "…"
    return name or "the product"


# ================================================================== CPSC


def _first(value: Any) -> str:
    if isinstance(value, list):
        value = value[0] if value else ""
    if isinstance(value, dict):
        value = value.get("Name") or value.get("name") or ""
    return str(value or "").strip()


def parse_cpsc_api(raw: dict[str, Any]) -> ImportedRecall:
    """A record of the CPSC Recalls REST API (saferproducts.gov/RestWebServices/Recall)."""
    recall_id = identifier(raw.get("RecallID"), "RecallID")
    number = identifier(raw.get("RecallNumber"), "RecallNumber")
    if recall_id in ("", "0") or not number:
        raise RecordError(
            f"CPSC API error returned as a record (RecallID {recall_id!r}, "
            f"RecallNumber {number!r}): not a recall"
        )
    flags: list[x.Flag] = []
    hazards = [h.get("Name", "") for h in raw.get("Hazards") or [] if isinstance(h, dict)]
    hazard = " ".join(h for h in hazards if h) or str(raw.get("Description") or "")
    products = [p for p in raw.get("Products") or [] if isinstance(p, dict)]
    name = _first(products) or str(raw.get("Title") or "")
    imp = ImportedRecall(
        agency=CPSC,
        reference=number,
        format="cpsc",
        raw=raw,
        title=f"Recall: {raw.get('Title') or name}",
        hazard=hazard,
        severity=severity(CPSC, "", hazard),
        hazard_type=hazard_type_for(hazard),
        published_on=parse_iso_date(raw.get("RecallDate"), "RecallDate"),
        product_description=str(raw.get("Description") or ""),
        url=str(raw.get("URL") or ""),
        brand=_first(raw.get("Manufacturers")),
        remedies=remedies_for(
            " ".join(r.get("Name", "") for r in raw.get("Remedies") or [] if isinstance(r, dict))
        ),
        images=[i.get("URL", "") for i in raw.get("Images") or [] if isinstance(i, dict)],
        consumer_contact=str(raw.get("ConsumerContact") or ""),
        stop_using=stop_using_for(name),
    )
    imp.read_notice_items(
        [
            *(
                e
                for i, r in enumerate(raw.get("Retailers") or [])
                if isinstance(r, dict)
                for e in notice_extract.extract_sale(
                    str(r.get("Name") or ""), f"Retailers[{i}].Name"
                )
            ),
            *(
                e
                for i, r in enumerate(raw.get("Injuries") or [])
                if isinstance(r, dict)
                for e in notice_extract.extract_incidents(
                    str(r.get("Name") or ""), f"Injuries[{i}].Name"
                )
            ),
            *notice_extract.extract_helpline(imp.consumer_contact, "ConsumerContact"),
        ]
    )
    items = []
    for i, p in enumerate(products or [{}]):
        item = _Item(p.get("Name") or f"product {i + 1}")
        model = identifier(
            p.get("Model"), f"Products[{i}].Model", max_length=MAX_MODEL_FIELD_LENGTH
        )
        if re.search(r"\bmodels?\b", model, re.IGNORECASE):
            item.models += x.extract_model_numbers(model, f"Products[{i}].Model")
        else:
            for part in re.split(r",|;|\s+and\s+|\s+or\s+", model):
                if part.strip() and x.model_is_usable(part.strip(), keyword=True):
                    item.models.append(
                        x.Extracted("model_number", f"Products[{i}].Model", model, part.strip())
                    )
        _scan(item, str(p.get("Description") or ""), f"Products[{i}].Description", flags=flags)
        units = x.extract_units_affected(
            str(p.get("NumberOfUnits") or "").replace("About ", "") + " units"
            if p.get("NumberOfUnits")
            else None,
            f"Products[{i}].NumberOfUnits",
        )
        if units and len(products) == 1:
            imp.units_affected = units.value
            imp.extracted.append(units)
        items.append(item)
    upcs = _Item("ProductUPCs")
    for j, u in enumerate(raw.get("ProductUPCs") or []):
        code = identifier(u.get("UPC") if isinstance(u, dict) else u, f"ProductUPCs[{j}]")
        if code:
            gtins, gflags = x.extract_gtins(f"UPC {code}", f"ProductUPCs[{j}]")
            upcs.gtins += gtins
            flags += gflags
    shared = _Item()
    _scan(shared, str(raw.get("Description") or ""), "Description", identifiers=False, flags=flags)
    for item in [*items, upcs]:
        item.constraints_from(shared)
    imp.flags = flags
    return _finish(imp, items + ([upcs] if raw.get("ProductUPCs") else []), [imp.brand, name])


def parse_cpsc_seed(raw: dict[str, Any]) -> ImportedRecall:
    """A normalised CPSC record (canon-event seeds): authority, ref, published, name, brand, model,
    hazard, url."""
    ref = identifier(raw.get("ref"), "ref")
    if not ref:
        raise RecordError("CPSC record without a recall number (ref)")
    name = str(raw.get("name") or "").strip()
    hazard = str(raw.get("hazard") or "").strip()
    flags: list[x.Flag] = []
    imp = ImportedRecall(
        agency=CPSC,
        reference=ref,
        format="cpsc",
        raw=raw,
        title=f"Recall: {name or 'product recalled by CPSC'}",
        hazard=hazard or "Not stated in the regulator's record; see its notice.",
        severity=severity(CPSC, "", hazard),
        hazard_type=hazard_type_for(hazard),
        published_on=parse_iso_date(raw.get("published"), "published"),
        product_description=name,
        url=str(raw.get("url") or ""),
        brand=clean_brand(str(raw.get("brand") or "")),
        remedies=remedies_for(hazard),
        stop_using=stop_using_for(name),
    )
    item = _Item(name)
    model, flag = _model_field(raw)
    if model:
        item.models.append(model)
    elif flag:
        flags.append(flag)
    _scan(item, name, "name", flags=flags)
    if gtin := identifier(raw.get("gtin"), "gtin"):
        gtins, gflags = x.extract_gtins(f"GTIN {gtin}", "gtin")
        item.gtins += gtins
        flags += gflags
    imp.flags = flags
    return _finish(imp, [item], [imp.brand, name])


def parse_cpsc_gsa(raw: dict[str, Any]) -> ImportedRecall:
    """A CPSC record of the retired USA.gov/GSA recalls API (2013)."""
    number = identifier(raw.get("recall_number"), "recall_number")
    if not number:
        raise RecordError("GSA/CPSC record without a recall_number")
    descriptions = [d for d in raw.get("descriptions") or [] if isinstance(d, str) and d.strip()]
    hazards = [h for h in raw.get("hazards") or [] if isinstance(h, str)]
    hazard = "; ".join(hazards)
    name = (
        _short_name(descriptions[0])
        if descriptions
        else ", ".join(raw.get("product_types") or []) or "product"
    )
    flags: list[x.Flag] = []
    imp = ImportedRecall(
        agency=CPSC,
        reference=number,
        format="cpsc-gsa",
        raw=raw,
        title=f"Recall: {name}",
        hazard=f"{hazard} hazard"
        if hazard
        else "Not stated in the regulator's record; see its notice.",
        severity=severity(CPSC, "", hazard),
        hazard_type=hazard_type_for(hazard),
        published_on=parse_iso_date(raw.get("recall_date"), "recall_date"),
        product_description="\n".join(descriptions),
        url=str(raw.get("recall_url") or ""),
        brand=_first(raw.get("manufacturers")),
        stop_using=stop_using_for(name),
        remedies=remedies_for(" ".join(descriptions)),
    )
    items = []
    for i, d in enumerate(descriptions):
        item = _Item(f"descriptions[{i}]")
        _scan(item, d, f"descriptions[{i}]", flags=flags)
        items.append(item)
    upcs = _Item("upcs")
    for j, given in enumerate(raw.get("upcs") or []):  # a list, or null (CPSC rarely fills it)
        code = identifier(given, f"upcs[{j}]")
        gtins, gflags = x.extract_gtins(f"UPC {code}", f"upcs[{j}]")
        upcs.gtins += gtins
        flags += gflags
    if upcs.gtins and items:
        # The record's UPCs belong to the products described: same constraints as the descriptions.
        for item in items:
            upcs.constraints_from(item)
    imp.flags = flags
    return _finish(
        imp,
        items + ([upcs] if raw.get("upcs") else []),
        [imp.brand, *(raw.get("manufacturers") or [])],
    )


# ================================================================== openFDA enforcement


_DESC_ITEM = re.compile(r"(?:^|(?<=[;.,])|(?<=\d\s))\s*(\d{1,2}|[a-h])\)\s+(?=[A-Z0-9\"])")
_CODE_HEADER = re.compile(r"(?:^|;)\s*((?:(?:\d{1,2}|[a-h])\)\s*(?:(?:-|,|and|to)\s*)?)+)")


def _item_key(token: str) -> int:
    return int(token) if token.isdigit() else ord(token.lower()) - ord("a") + 1


def _split_items(text: str) -> list[tuple[int | None, str]]:
    marks = list(_DESC_ITEM.finditer(text))
    if not marks:
        return [(None, text)]
    prefix = text[: marks[0].start()].strip(" ,;")
    out: dict[int, str] = {}
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        key = _item_key(m.group(1))
        body = text[m.end() : end].strip(" ;,")
        out[key] = (
            (out[key] + " " + body) if key in out else (f"{prefix}, {body}" if prefix else body)
        )
    return list(out.items())


def _header_items(header: str) -> set[int]:
    tokens = [(m.group(1), m.end()) for m in re.finditer(r"(\d{1,2}|[a-h])\)", header)]
    out: set[int] = set()
    for i, (tok, end) in enumerate(tokens):
        out.add(_item_key(tok))
        if i + 1 < len(tokens) and re.match(r"\s*(?:-|to)\s*", header[end : end + 4]):
            out.update(range(_item_key(tok), _item_key(tokens[i + 1][0]) + 1))
    return out


def _split_code_info(text: str) -> list[tuple[set[int] | None, str]]:
    heads = list(_CODE_HEADER.finditer(text))
    if not heads:
        return [(None, text)]
    out: list[tuple[set[int] | None, str]] = []
    if heads[0].start() > 0 and text[: heads[0].start()].strip(" ;"):
        out.append((None, text[: heads[0].start()]))
    for i, m in enumerate(heads):
        end = heads[i + 1].start() if i + 1 < len(heads) else len(text)
        out.append((_header_items(m.group(1)), text[m.end() : end]))
    return out


def _fda_value(raw: dict[str, Any], name: str) -> tuple[str, Any]:
    """A field by its current name (code_info) or its legacy one (code-info): (field name as given,
    value), None when absent."""
    for key in (name, name.replace("_", "-")):
        if key in raw and raw[key] is not None:
            return key, raw[key]
    return name.replace("_", "-"), None


def _fda_get(raw: dict[str, Any], name: str) -> tuple[str, str]:
    """The same as text (an object or array refuses the record)."""
    key, value = _fda_value(raw, name)
    return key, text_field(value, key)


def parse_openfda(raw: dict[str, Any]) -> ImportedRecall:
    desc_field, desc = _fda_get(raw, "product_description")
    code_field, code = _fda_get(raw, "code_info")
    _, reason = _fda_get(raw, "reason_for_recall")
    _, classification = _fda_get(raw, "classification")
    _, product_type = _fda_get(raw, "product_type")
    _, firm = _fda_get(raw, "recalling_firm")
    qty_field, qty = _fda_get(raw, "product_quantity")
    numbers: list[x.Extracted] = []
    number_field, number = _fda_value(raw, "recall_number")
    given = identifier(number, number_field)
    if given:
        numbers.append(x.Extracted("reference", "recall_number", given, given.strip()))
    numbers += [
        n for n in x.extract_fda_recall_numbers(desc, desc_field) if n.value != given.strip()
    ]
    if not numbers:
        raise RecordError(
            "openFDA record without a recall number (no recall_number field and no "
            '"Recall # ..." in product-description)'
        )
    if not desc.strip():
        raise RecordError("openFDA record without a product description")
    reference = numbers[0].value if given.strip() else min(n.value for n in numbers)
    published = _fda_date(*_fda_value(raw, "report_date")) or _fda_date(
        *_fda_value(raw, "recall_initiation_date")
    )
    pieces = _split_items(desc)
    name = _short_name(pieces[0][1])
    brand = re.sub(r"^\s*recalling firm:\s*", "", firm, flags=re.IGNORECASE).split(",")[0].strip()
    hazard = reason.strip()
    imp = ImportedRecall(
        agency=FDA,
        reference=reference,
        format="openfda",
        raw=raw,
        title=f"Recall: {name}"
        + (f" and {len(pieces) - 1} more products" if len(pieces) > 1 else ""),
        hazard=hazard or "Not stated in the regulator's record; see its notice.",
        severity=severity(FDA, classification, hazard),
        classification=classification.strip(),
        hazard_type=hazard_type_for(hazard),
        published_on=published,
        product_description=desc,
        brand=brand,
        stop_using=stop_using_for(name if len(pieces) == 1 else "these products", product_type),
        remedies=remedies_for(reason),
        extra_references=[n.value for n in numbers],
    )
    imp.extracted += numbers
    distribution_field, distribution = _fda_get(raw, "distribution_pattern")
    imp.read_notice_items(notice_extract.extract_sale(distribution, distribution_field))
    units = x.extract_units_affected(qty, qty_field)
    if units:
        imp.units_affected = units.value
        imp.extracted.append(units)
    flags: list[x.Flag] = []
    items: dict[int | None, _Item] = {}
    for key, text in pieces:
        item = items[key] = _Item(f"item {key})" if key is not None else "the product")
        _scan(item, text, desc_field, constraints=False, flags=flags, item_numbers=False)
    for item_set, text in _split_code_info(code):
        chunk = _Item()
        _scan(chunk, text, code_field, identifiers=False, flags=flags)
        targets = [i for k, i in items.items() if item_set is None or k is None or k in item_set]
        for item in targets:
            item.constraints_from(chunk)
    imp.flags = flags
    return _finish(imp, list(items.values()), [brand])


def _fda_date(field: str, value: Any) -> date | None:
    """openFDA's dates (``20120613``, ``06/13/2012`` or ISO); None when absent. Anything else
    refuses the record, as :func:`parse_iso_date` does."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise RecordError(f"{field} must be a date as text, not {json_type(value)}")
    for fmt in ("%m/%d/%Y", "%Y%m%d", "%Y-%m-%d"):
        try:
            return checked_date(datetime.strptime(value.strip(), fmt).date(), field)
        except ValueError:
            continue
    raise RecordError(f"{field} is not a date (YYYYMMDD, MM/DD/YYYY or YYYY-MM-DD): {value[:40]!r}")


# ================================================================== EU Safety Gate


def parse_safety_gate(raw: dict[str, Any]) -> ImportedRecall:
    ref_field = "ref" if raw.get("ref") not in (None, "") else "reference"
    ref = identifier(raw.get(ref_field), ref_field)
    if not ref:
        raise RecordError("Safety Gate record without an alert reference (ref)")
    name = str(raw.get("name") or "").strip()
    hazard = str(raw.get("hazard") or "").strip()
    brand = str(raw.get("brand") or "").strip()
    risk = str(raw.get("risk_level") or raw.get("riskLevel") or "").strip()
    product = " ".join(p for p in (brand, name) if p) or "the product"
    gtin = identifier(raw.get("gtin"), "gtin")
    imp = ImportedRecall(
        agency=EU_SAFETY_GATE,
        reference=ref,
        format="safety-gate",
        raw=raw,
        title=f"Recall: {product}",
        hazard=hazard or "Not stated in the regulator's record; see its notice.",
        severity=severity(EU_SAFETY_GATE, risk, hazard),
        classification=risk,
        hazard_type=hazard_type_for(hazard, str(raw.get("category") or "")),
        published_on=parse_iso_date(raw.get("published"), "published"),
        product_description=" · ".join(str(v) for v in (name, raw.get("category")) if v),
        url=str(raw.get("url") or ""),
        brand=brand,
        stop_using=stop_using_for(product),
        remedies=remedies_for(str(raw.get("measures") or "")),
    )
    flags: list[x.Flag] = []
    item = _Item(product)
    if gtin:
        gtins, gflags = x.extract_gtins(f"GTIN {gtin}", "gtin")
        item.gtins += gtins
        flags += gflags
    model, flag = _model_field(raw)
    if model and re.sub(r"\D", "", gtin) != re.sub(r"\D", "", model.value):
        item.models.append(model)
    elif flag:
        flags.append(flag)
    imp.flags = flags
    return _finish(imp, [item], [brand])


# ================================================================== dispatch


def detect(raw: Any) -> str:
    """The shape of one record: cpsc-api, cpsc-seed, cpsc-gsa, openfda or safety-gate."""
    if not isinstance(raw, dict):
        raise RecordError(f"a record must be a JSON object, not {type(raw).__name__}")
    if "RecallID" in raw or "RecallNumber" in raw:
        return "cpsc-api"
    authority = str(raw.get("authority") or "").upper()
    if authority == "CPSC":
        return "cpsc-seed"
    if authority in ("SAFETY_GATE", "EU_SAFETY_GATE", "RAPEX"):
        return "safety-gate"
    if "descriptions" in raw and "recall_number" in raw:
        return "cpsc-gsa"
    if any(
        k in raw
        for k in (
            "product-description",
            "product_description",
            "code-info",
            "code_info",
            "reason-for-recall",
            "reason_for_recall",
        )
    ):
        return "openfda"
    if set(raw) & {"error", "errors", "Error", "message", "Message"}:
        raise RecordError(f"an error response, not a recall: {str(raw)[:200]}")
    raise RecordError(f"unrecognised record shape (keys: {', '.join(sorted(raw)[:8]) or 'none'})")


_PARSERS: dict[str, Callable[[dict[str, Any]], ImportedRecall]] = {
    "cpsc-api": parse_cpsc_api,
    "cpsc-seed": parse_cpsc_seed,
    "cpsc-gsa": parse_cpsc_gsa,
    "openfda": parse_openfda,
    "safety-gate": parse_safety_gate,
}
_ACCEPTS = {
    "cpsc": {"cpsc-api", "cpsc-seed"},
    "cpsc-gsa": {"cpsc-gsa"},
    "openfda": {"openfda"},
    "safety-gate": {"safety-gate"},
}


def parse_record(fmt: str, raw: Any) -> ImportedRecall:
    """Parse one raw record in the given format (``auto`` detects it per record)."""
    if fmt not in FORMATS:
        raise RecordError(f"unknown format {fmt!r} (one of {', '.join(FORMATS)})")
    shape = detect(raw)
    if fmt != "auto" and shape not in _ACCEPTS[fmt]:
        raise RecordError(f"not a {fmt} record (it looks like {shape})")
    return _PARSERS[shape](raw)
