"""Rendering a recall notice, free of I/O: subject, plain text and HTML, in the languages of
``recall_shared.i18n`` (strings from the gettext catalogs, dates by Babel).

The wording follows what regulators ask of a recall notice: the word "recall" in the subject, the
product and the customer's own purchase, the hazard without softening, "stop using" first, the
remedies, and a contact. Every seller-written value is escaped in HTML (autoescape) and stripped of
line breaks and bidirectional controls in headers (a right-to-left override could make a subject
read as something else). Images are https only: a plain-http image would let its host see who opened
the notice. No marketing, ever.

Seller texts come in the recall's language, with translations in ``RecallContent.texts`` (by locale,
e.g. "de" or "de-AT"): the customer's locale is used when the recall has it, field by field, else
the main text.
"""

from __future__ import annotations

import binascii
import email.policy
import email.quoprimime
import functools
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass
from email.generator import BytesGenerator
from email.message import EmailMessage
from email.utils import formataddr, formatdate, parseaddr

from jinja2 import Environment, PackageLoader, StrictUndefined

from notifier.messages import SOURCE
from notifier.remedy_reminders import reminder_reason
from recall_shared import events as ev
from recall_shared.i18n import LOCALES, Catalogs, format_date, pick_locale
from recall_shared.notice_view import fallback_note, notice_items, untranslated
from recall_shared.validation import strip_bidi_controls

__all__ = ["pick_locale"]  # re-exported: the notices' languages are the pages'

SUPPORTED_LOCALES = LOCALES


@functools.cache
def catalogs() -> Catalogs:
    """The notices' gettext catalogs (``locale/``, English source in ``messages.py``), read once per
    process: they are files of the installed package."""
    return Catalogs("notifier", SOURCE)


_HEADER_UNSAFE = re.compile(r"[\r\n\t\x00-\x1f\x7f\u2028\u2029\x85]+")
_SAFE_IMAGE_URL = re.compile(r"^https://[^\s\"'<>]+$", re.IGNORECASE)

# Headers of a notice are never folded (one-line Subject, whatever its length); the body parts are
# encoded quoted-printable under the default policy, so their lines stay within SMTP's limits.
NOTICE_POLICY = email.policy.default.clone(max_line_length=10_000)
_WIRE_POLICY = NOTICE_POLICY.clone(linesep="\r\n")


def header_safe(value: str, limit: int = 200) -> str:
    """One line, no control characters: seller text cannot inject headers or disguise them."""
    return _HEADER_UNSAFE.sub(" ", strip_bidi_controls(value)).strip()[:limit]


@dataclass(frozen=True)
class LocalTexts:
    """The seller-written texts of a recall in one locale (a missing translation falls back per
    field)."""

    title: str
    product_description: str
    hazard: str
    stop_using: str
    consumer_contact: str
    remedy_instructions: dict[str, str]


def localized(recall: ev.RecallContent, locale: str | None) -> LocalTexts:
    wanted = (locale or "").replace("_", "-").lower()
    lang = wanted.split("-")[0]
    by_key = {k.replace("_", "-").lower(): v for k, v in recall.texts.items()}
    tr = (
        by_key.get(wanted)
        or by_key.get(lang)
        or next((v for k, v in by_key.items() if k.split("-")[0] == lang), None)
        or ev.LocalizedText()
    )
    return LocalTexts(
        title=tr.title or recall.title,
        product_description=tr.product_description or recall.product_description,
        hazard=tr.hazard or recall.hazard,
        stop_using=tr.stop_using or recall.stop_using,
        consumer_contact=tr.consumer_contact or recall.consumer_contact,
        remedy_instructions={
            r.type: tr.remedy_instructions.get(r.type) or r.instructions for r in recall.remedies
        },
    )


def _attribute(s: Mapping[str, str], name: str) -> str:
    return s.get(f"attr.{name.strip().lower()}", name)


def _notice_items(recall: ev.RecallContent, lang: str) -> dict[str, object]:
    """The recall's notice items (brand, identifiers' place, units, sale, incidents, helpline,
    references) for the templates, and the request to pass the notice on, shown last."""
    lines = notice_items(recall, lang)
    return {
        "items": [x for x in lines if x.item != "pass_it_on"],
        "pass_it_on": next((x.text for x in lines if x.item == "pass_it_on"), ""),
        # the seller's texts left in the recall's language: marked (lang) and said so (note)
        "text_lang": untranslated(recall, lang),
        "fallback_note": fallback_note(recall, lang),
    }


@dataclass(frozen=True)
class _RecallParts:
    """What a notice shows of its recall in one language: the same for every customer it reaches,
    so made once per recall and language (:meth:`NoticeRenderer._recall_parts`)."""

    recall: ev.RecallContent  # what they were made from: a cached entry is used only for its equal
    texts: LocalTexts
    images: list[str]
    remedies: list[dict[str, str]]
    withdrawal: str
    image_alt: str
    items: dict[str, object]


_RECALL_PARTS_CACHED = 256  # recall × language entries, then forgotten


@dataclass(frozen=True)
class RenderedNotice:
    subject: str
    text: str
    html: str


class NoticeRenderer:
    def __init__(self, portal_url: str) -> None:
        self.portal_url = portal_url.rstrip("/")
        self.html_env = Environment(
            loader=PackageLoader("notifier", "templates"),
            auto_reload=False,  # templates ship with the code: no file check per message
            autoescape=True,  # every seller-written value is escaped
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.text_env = Environment(
            loader=PackageLoader("notifier", "templates"),
            auto_reload=False,
            autoescape=False,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._parts: dict[tuple[str, int, str, str], _RecallParts] = {}

    def _recall_parts(
        self, alert: ev.AlertState, locale: str, loc: str, s: Mapping[str, str]
    ) -> _RecallParts:
        """The recall's parts of a notice, kept per recall version and language: a recall reaches
        thousands of customers, and these cost most of a notice's rendering. An entry is used only
        for a recall equal to the one it was made from."""
        key = (alert.recall_id, alert.recall_version, locale, loc)
        recall = alert.recall
        parts = self._parts.get(key)
        if parts is not None and (parts.recall is recall or parts.recall == recall):
            return parts
        texts = localized(recall, locale)
        parts = _RecallParts(
            recall=recall,
            texts=texts,
            images=[u for u in recall.images if _SAFE_IMAGE_URL.match(u)],
            remedies=[
                {
                    "label": s[f"remedy.{r.type}"],
                    "instructions": texts.remedy_instructions.get(r.type, ""),
                }
                for r in recall.remedies
            ],
            withdrawal=s["withdrawal"].format(title=texts.title),
            image_alt=s["image_alt"].format(title=texts.title),
            items=_notice_items(recall, loc),
        )
        if len(self._parts) >= _RECALL_PARTS_CACHED:
            self._parts.clear()
        self._parts[key] = parts
        return parts

    def subject(
        self, recall: ev.RecallContent, kind: str, locale: str, title: str | None = None
    ) -> str:
        s = catalogs().messages(locale)
        base = s["subject.safety_alert" if recall.kind == "safety_alert" else "subject.recall"]
        suffix = {
            "update": s["subject.update"],
            "withdrawal": s["subject.withdrawal"],
            "reminder": s["subject.reminder"],
            "amendment": s["subject.amendment"],  # a material amendment (domain.material_changes)
        }.get(kind, "")
        return header_safe(base.format(title=header_safe(title or recall.title, 150)) + suffix, 250)

    def render(
        self,
        alert: ev.AlertState,
        *,
        kind: str,  # ev.NoticeKind, or "amendment" (its notices' events say "update")
        locale: str | None,
        recipient_name: str,
        recipient_role: str,
        reminder_no: int = 0,
    ) -> RenderedNotice:
        loc = pick_locale(locale)
        s: Mapping[str, str] = catalogs().messages(loc)
        remedy_reason = reminder_reason(reminder_no) if kind == "reminder" else None
        if remedy_reason:  # a remedy that waits for the customer (remedy_reminders.py)
            s = {**s, "action": s["remedy_reminder.action"]}
        recall = alert.recall
        parts = self._recall_parts(alert, locale or loc, loc, s)
        texts = parts.texts
        if kind == "withdrawal":
            intro = ""
        elif kind == "update":
            intro = s["intro.update"]
        elif kind == "amendment":
            intro = s["intro.amendment"]
        elif remedy_reason:
            intro = s[f"remedy_reminder.{remedy_reason}"]
        elif kind == "reminder":
            intro = s["intro.reminder"]
        elif recipient_role == "account_admin":
            intro = s["intro.admin"]
        elif recipient_role == "gift_recipient":
            intro = s["gift.recipient"]
        else:
            intro = s["intro.safety_alert" if recall.kind == "safety_alert" else "intro.recall"]
        lines = [
            {
                "title": line.title or texts.title,
                "check": s["check"].format(
                    what=", ".join(_attribute(s, a) for a in line.unknown_attributes)
                )
                if line.unknown_attributes
                else "",
                "bought": s["bought_on"].format(
                    date=format_date(line.purchased_at, loc),
                    units=line.units,
                    order=line.order_id,
                ),
                "identifiers": ", ".join(
                    x
                    for x in (
                        line.product_id,
                        f"GTIN {line.gtin}" if line.gtin else "",
                        f"{s['model']} {line.model_number}" if line.model_number else "",
                        s["lot"].format(lot=line.lot) if line.lot else "",
                        s["serial"].format(serial=line.serial) if line.serial else "",
                    )
                    if x
                ),
            }
            for line in alert.lines
            # A gift's recipient is told of the gifts, not of what the buyer kept.
            if recipient_role != "gift_recipient" or line.is_gift
        ]
        gtins = list(dict.fromkeys(line.gtin for line in alert.lines if line.gtin))
        models = list(dict.fromkeys(line.model_number for line in alert.lines if line.model_number))
        product_ids = ", ".join(
            [f"GTIN {g}" for g in gtins] + [f"{s['model']} {m}" for m in models]
        )
        ctx = {
            "s": s,
            "kind": kind,
            "greeting": s["greeting"].format(name=recipient_name)
            if recipient_name
            else s["greeting.anonymous"],
            "intro": intro,
            "withdrawal": parts.withdrawal,
            "recall": texts,
            "images": parts.images,
            "image_alt": parts.image_alt,
            "product_ids": product_ids,
            "lines": lines,
            "possibly": alert.tier == "possibly_affected"
            or any(line.tier == "possibly_affected" for line in alert.lines),
            "remedies": parts.remedies,
            "link": f"{self.portal_url}/recalls/{alert.alert_id}",
            # The purchaser of a gift is asked to pass the notice on (issue 15).
            "gift_pass_on": s["gift.pass_on"]
            if recipient_role != "gift_recipient" and any(x.is_gift for x in alert.lines)
            else "",
            "lang": loc,
            **parts.items,
        }
        return RenderedNotice(
            subject=self.subject(recall, kind, loc, texts.title),
            text=self.text_env.get_template("notice.txt.j2").render(ctx),
            html=self.html_env.get_template("notice.html.j2").render(ctx),
        )


# An encoded word is "=?utf-8?q?" + the encoded bytes + "?=": 12 characters around them.
_WORD_OVERHEAD = len(email.quoprimime.header_encode(b"a", "utf-8")) - 1
_WORD_MAX = 75


def _encoded_words(value: str) -> str:
    """An unstructured header value: ASCII as is; otherwise RFC 2047 encoded words of at most 75
    characters, on one line (decoders join adjacent encoded words), folded only if the line would
    break SMTP's limit. Each word is as long as the limit allows; a character's encoded length is
    added to its word's, not the word encoded again per character."""
    if value.isascii():
        return value
    chunks: list[str] = []
    chunk: list[str] = []
    length = _WORD_OVERHEAD
    for ch in value:
        size = email.quoprimime.header_length(ch.encode())
        if chunk and length + size > _WORD_MAX:
            chunks.append("".join(chunk))
            chunk, length = [], _WORD_OVERHEAD
        chunk.append(ch)
        length += size
    if chunk:
        chunks.append("".join(chunk))
    words = [email.quoprimime.header_encode(c.encode(), "utf-8") for c in chunks]
    line = " ".join(words)
    return line if len(line) < 900 else "\r\n ".join(words)


def usable_address(addr: str) -> bool:
    """Whether ``addr`` can stand in an address header as it is (one mailbox, nothing to escape)."""
    return (
        bool(addr)
        and "@" in addr
        and not _HEADER_UNSAFE.search(addr)
        and not any(c in addr for c in ' <>,;"')
    )


def _address(display: str, addr: str) -> str:
    if not usable_address(addr):
        raise ValueError(f"not a usable e-mail address: {addr!r}")
    return formataddr((header_safe(display, 100), addr), charset="utf-8") if display else addr


def _qp(body: str) -> bytes:
    text = body.replace("\r\n", "\n").replace("\r", "\n")
    return binascii.b2a_qp(
        text.encode("utf-8"), quotetabs=False, istext=True, header=False
    ).replace(b"\n", b"\r\n")


@functools.lru_cache(maxsize=16)
def _mailbox(value: str) -> tuple[str, str]:
    """The sender's name and address (one per configuration: parsed once, not per message)."""
    return parseaddr(value)


def wire_message(
    rendered: RenderedNotice,
    *,
    to: str,
    name: str,
    mail_from: str,
    message_id: str,
    notice_id: str,
    date: str | None = None,
) -> bytes:
    """The notice as sent, written directly (the stdlib email package costs milliseconds per
    message): CRLF line ends, one-line headers, a multipart/alternative of quoted-printable text and
    HTML. The boundary starts with "=_", which quoted-printable content can never contain."""
    from_name, from_addr = _mailbox(mail_from)
    boundary = "=_recall_" + re.sub(r"[^0-9A-Za-z]", "", notice_id)[:60]
    headers = [
        ("From", _address(from_name, from_addr)),
        ("To", _address(name, to)),
        ("Subject", _encoded_words(header_safe(rendered.subject, 250))),
        ("Date", date or formatdate(localtime=False)),
        ("Message-ID", header_safe(message_id, 200)),
        ("X-Recall-Notice-Id", header_safe(notice_id, 200)),
        ("Auto-Submitted", "auto-generated"),
        ("MIME-Version", "1.0"),
        ("Content-Type", f'multipart/alternative; boundary="{boundary}"'),
    ]
    out = [f"{k}: {v}".encode() for k, v in headers]
    out.append(b"")
    for subtype, body in (("plain", rendered.text), ("html", rendered.html)):
        out.append(f"--{boundary}".encode())
        out.append(f'Content-Type: text/{subtype}; charset="utf-8"'.encode())
        out.append(b"Content-Transfer-Encoding: quoted-printable")
        out.append(b"")
        out.append(_qp(body))
    out.append(f"--{boundary}--".encode())
    out.append(b"")
    return b"\r\n".join(out)


class OutgoingMail:
    """A notice ready for SMTP: envelope and bytes. Header lookups (``mail["Message-ID"]``) parse
    the bytes on first use only, so the sending path never pays for the email package."""

    __slots__ = ("_message", "data", "recipients", "sender")

    def __init__(self, sender: str, recipients: list[str], data: bytes) -> None:
        self.sender = sender
        self.recipients = recipients
        self.data = data
        self._message: EmailMessage | None = None

    @property
    def message(self) -> EmailMessage:
        if self._message is None:
            self._message = email.message_from_bytes(self.data, policy=NOTICE_POLICY)
        return self._message

    def __getitem__(self, name: str) -> object:
        return self.message[name]

    def get(self, name: str, default: object = None) -> object:
        return self.message.get(name, default)


def outgoing(
    rendered: RenderedNotice, *, to: str, name: str, mail_from: str, message_id: str, notice_id: str
) -> OutgoingMail:
    data = wire_message(
        rendered, to=to, name=name, mail_from=mail_from, message_id=message_id, notice_id=notice_id
    )
    return OutgoingMail(_mailbox(mail_from)[1], [to], data)


def build_message(
    rendered: RenderedNotice, *, to: str, name: str, mail_from: str, message_id: str, notice_id: str
) -> EmailMessage:
    """The notice as an EmailMessage (the same bytes as :func:`wire_message`, parsed back)."""
    return outgoing(
        rendered, to=to, name=name, mail_from=mail_from, message_id=message_id, notice_id=notice_id
    ).message


def serialize_message(msg: EmailMessage) -> bytes:
    """A message as sent: CRLF line ends, headers unfolded (aiosmtplib's own flattening would fold
    them)."""
    buf = io.BytesIO()
    BytesGenerator(buf, policy=_WIRE_POLICY).flatten(msg)
    return buf.getvalue()
