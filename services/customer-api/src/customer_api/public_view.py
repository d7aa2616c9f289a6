"""The public recall pages' content, free of I/O: a recall as anyone may read it (no customer, no
seller account, nothing personal), its schema.org JSON-LD, the Atom feed, and the ETags that make
them cacheable."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from xml.etree import ElementTree as ET

import orjson

from customer_api import i18n
from customer_api.label_form import LabelForm
from recall_shared import events as ev
from recall_shared.label_check import Label, check
from recall_shared.notice_view import (
    fallback_note,
    notice_items,
    remedy_texts,
    translation,
    untranslated,
)

ATOM = "http://www.w3.org/2005/Atom"
VIEW_VERSION = "3"
"""Part of every ETag: bump it when the pages' markup changes, so caches drop the old pages."""


@dataclass(frozen=True)
class PublicRecall:
    """A row of ``public_recalls``, as the views need it."""

    recall_id: str
    version: int
    status: str  # active | closed | withdrawn
    snapshot: ev.RecallSnapshot
    updated_at: datetime
    closed_at: datetime | None
    close_reason: str = ""


ENDED = ("closed", "withdrawn")
"""The statuses of a recall that is over: completed (closed), or withdrawn as issued in error."""


def etag(*parts: object) -> str:
    """A weak validator of everything a response depends on (its rows' versions, the language)."""
    digest = hashlib.sha256(orjson.dumps([VIEW_VERSION, *map(str, parts)])).hexdigest()[:32]
    return f'W/"{digest}"'


def matches(if_none_match: str | None, tag: str) -> bool:
    """Whether a request's If-None-Match names ``tag`` (weak comparison, RFC 9110 13.1.2)."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    wanted = tag.removeprefix("W/")
    return any(t.strip().removeprefix("W/") == wanted for t in if_none_match.split(","))


def _codes(rule: ev.CodeRule, s: i18n.Messages) -> str:
    parts = list(rule.values)
    parts += [s["public.range"].format(first=r.first, last=r.last) for r in rule.ranges]
    parts += [s["public.prefix"].format(prefix=p) for p in rule.prefixes]
    return ", ".join(parts)


def identifiers(recall: ev.RecallSnapshot, s: i18n.Messages) -> list[str]:
    """How to recognise the product, from its scope: GTINs, model numbers, lots and serials."""
    gtins = dict.fromkeys(g for r in recall.rules for g in r.gtins)
    models = dict.fromkeys(m for r in recall.rules for m in r.model_numbers)
    out = [s["public.gtin"].format(gtin=g) for g in gtins]
    out += [s["public.model"].format(model=m) for m in models]
    for rule in recall.rules:
        if rule.lots:
            out.append(s["public.lots"].format(codes=_codes(rule.lots, s)))
        if rule.serials:
            out.append(s["public.serials"].format(codes=_codes(rule.serials, s)))
    return list(dict.fromkeys(out))


def recall_view(row: PublicRecall, lang: str) -> dict[str, Any]:
    """Everything the public page shows of a recall, in ``lang`` where the seller translated it."""
    s = i18n.strings(lang)
    content = row.snapshot.content
    tr = translation(content, lang)

    def text(field: str) -> str:
        return (getattr(tr, field) if tr else "") or getattr(content, field)

    items = notice_items(content, lang)
    return {
        "id": row.recall_id,
        "url": f"/public/recalls/{row.recall_id}",
        "title": text("title"),
        "kind": s[f"kind.{content.kind}"],
        "severity": s[f"severity.{content.severity}"],
        "closed": row.status == "closed",
        "withdrawn": row.status == "withdrawn",
        "ended": i18n.fmt_date(row.closed_at, lang) if row.closed_at else "",
        "close_reason": row.close_reason,
        "published": i18n.fmt_date(row.snapshot.published_at, lang),
        "updated": i18n.fmt_date(row.updated_at, lang),
        "hazard": text("hazard"),
        "stop_using": text("stop_using"),
        "product_description": text("product_description"),
        "consumer_contact": text("consumer_contact"),
        "images": [u for u in content.images if u[:8].lower() == "https://"],
        "identifiers": identifiers(row.snapshot, s),
        "remedies": [
            {"label": s[f"remedy.{r.type}"], "instructions": r.instructions, "lang": r.lang}
            for r in remedy_texts(content, lang)
        ],
        "items": [x for x in items if x.item != "pass_it_on"],
        "pass_it_on": next((x.text for x in items if x.item == "pass_it_on"), ""),
        "text_lang": untranslated(content, lang),
        "fallback_note": fallback_note(content, lang),
    }


def json_ld(row: PublicRecall, base_url: str) -> str:
    """schema.org has no recall type: a WebPage about the Product, with the recall's dates, safe
    inside a <script> element (``<`` escaped)."""
    content = row.snapshot.content
    product: dict[str, Any] = {"@type": "Product", "name": content.title}
    if content.brand:
        product["brand"] = {"@type": "Brand", "name": content.brand}
    gtins = sorted({g for r in row.snapshot.rules for g in r.gtins})
    models = sorted({m for r in row.snapshot.rules for m in r.model_numbers})
    if gtins:
        product["gtin14"] = gtins[0] if len(gtins) == 1 else gtins
    if models:
        product["model"] = models[0] if len(models) == 1 else models
    if content.images:
        product["image"] = [u for u in content.images if u[:8].lower() == "https://"]
    document = {
        "@context": "https://schema.org",
        "@type": "WebPage",
        "url": f"{base_url}/public/recalls/{row.recall_id}",
        "name": content.title,
        "description": content.hazard,
        "inLanguage": content.locale,
        "datePublished": row.snapshot.published_at.isoformat(),
        "dateModified": row.updated_at.isoformat(),
        "about": product,
    }
    if row.closed_at:
        document["expires"] = row.closed_at.isoformat()
    return orjson.dumps(document).decode().replace("<", "\\u003c")


def atom_feed(rows: list[PublicRecall], base_url: str, lang: str) -> bytes:
    """The published recalls as an Atom feed (RFC 4287), newest first."""
    s = i18n.strings(lang)
    ET.register_namespace("", ATOM)
    feed = ET.Element(f"{{{ATOM}}}feed", {"{http://www.w3.org/XML/1998/namespace}lang": lang})
    ET.SubElement(feed, f"{{{ATOM}}}id").text = f"{base_url}/public/recalls.atom"
    ET.SubElement(feed, f"{{{ATOM}}}title").text = f"{s['public.title']} – {s['site']}"
    updated = max((r.updated_at for r in rows), default=datetime(1970, 1, 1, tzinfo=UTC))
    ET.SubElement(feed, f"{{{ATOM}}}updated").text = updated.isoformat()
    ET.SubElement(feed, f"{{{ATOM}}}author").append(_named(s["site"]))
    ET.SubElement(
        feed, f"{{{ATOM}}}link", {"rel": "self", "href": f"{base_url}/public/recalls.atom"}
    )
    ET.SubElement(
        feed,
        f"{{{ATOM}}}link",
        {"rel": "alternate", "type": "text/html", "href": f"{base_url}/public/recalls"},
    )
    for row in rows:
        view = recall_view(row, lang)
        entry = ET.SubElement(feed, f"{{{ATOM}}}entry")
        ET.SubElement(entry, f"{{{ATOM}}}id").text = f"urn:uuid:{row.recall_id}"
        ET.SubElement(entry, f"{{{ATOM}}}title").text = _entry_title(view, s)
        ET.SubElement(entry, f"{{{ATOM}}}published").text = row.snapshot.published_at.isoformat()
        ET.SubElement(entry, f"{{{ATOM}}}updated").text = row.updated_at.isoformat()
        ET.SubElement(
            entry,
            f"{{{ATOM}}}link",
            {"rel": "alternate", "type": "text/html", "href": f"{base_url}{view['url']}"},
        )
        ET.SubElement(entry, f"{{{ATOM}}}summary").text = _entry_summary(view, s)
    return ET.tostring(feed, encoding="utf-8", xml_declaration=True)


def _entry_title(view: dict[str, Any], s: i18n.Messages) -> str:
    for state in ENDED:
        if view[state]:
            return f"{view['title']} ({s[f'public.status.{state}']})"
    return str(view["title"])


def _entry_summary(view: dict[str, Any], s: i18n.Messages) -> str:
    """What a feed reader shows: a withdrawn recall's withdrawal first, never its "stop using"
    alone (the product is no longer recalled)."""
    if view["withdrawn"]:
        parts = [s["public.withdrawn_note"].format(date=view["ended"])]
        if view["close_reason"]:
            parts.append(s["public.close_reason"].format(reason=view["close_reason"]))
        return " ".join(parts)
    return f"{view['stop_using']} {view['hazard']}".strip()


def _named(name: str) -> ET.Element:
    element = ET.Element(f"{{{ATOM}}}name")
    element.text = name
    return element


def label_check_view(row: PublicRecall, typed: LabelForm, lang: str) -> dict[str, str]:
    """The anonymous "am I affected?": a barcode, a lot or serial and the dates from the label
    against the recall's scope (``recall_shared.label_check``, as matching compares them). Nobody's
    purchase is known here, so a rule limited to a seller or a purchase window cannot be told."""
    s = i18n.strings(lang)
    answer = check(
        row.snapshot.rules,
        Label(
            gtin=typed.text("gtin"),
            lot=typed.text("lot"),
            serial=typed.text("serial"),
            manufactured_on=typed.day("manufactured_on"),
            best_before=typed.day("best_before"),
            expires_on=typed.day("expires_on"),
        ),
    )
    if answer.answer != "cannot_tell":
        return {"answer": answer.answer, "text": s[f"check.{answer.answer}"]}
    what = ", ".join(s.get(f"attr.{u}", u) for u in answer.unknown)
    return {"answer": "cannot_tell", "text": s["check.cannot_tell"].format(what=what)}
