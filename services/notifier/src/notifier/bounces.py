"""Bounces that come back by mail, free of I/O: the per-notice return path (VERP) and the reading of
what arrives there, delivery status notifications (RFC 3464) and spam complaints (ARF, RFC 5965).

**VERP.** Every notice leaves with its own envelope sender, ``bounces+<notice id>.<tag>@<domain>``;
the receiving system sends any DSN to that address, so a bounce names its notice even when it quotes
nothing of the original message (many do not). The tag is an HMAC of the notice id under
``bounce_secret``: only a return path we minted is taken, so nobody can bounce a notice by guessing
its id.

**Which notice a report is about.** The VERP recipient first; else the ``X-Recall-Notice-Id`` or the
``Message-ID`` of the original message, when the report returns its headers (a DSN sent to the
plain bounce address, a feedback loop's copy). Only ids of the shape we mint are taken from headers.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage, Message
from email.parser import HeaderParser

from notifier.domain import DeliveryReport, classify_dsn

_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_TAG_LEN = 12
_MESSAGE_ID = re.compile(rf"<?({_UUID})@recall-alerts\.notices>?", re.IGNORECASE)
_NOTICE_ID = re.compile(rf"^{_UUID}$", re.IGNORECASE)


# --------------------------------------------------------------------------- VERP


def _tag(notice_id: str, secret: str) -> str:
    return hmac.new(secret.encode(), notice_id.encode(), hashlib.sha256).hexdigest()[:_TAG_LEN]


def verp_address(bounce_address: str, notice_id: str, secret: str) -> str:
    """The return path of one notice: ``local+<id>.<tag>@domain`` from ``local@domain``."""
    local, _, domain = bounce_address.rpartition("@")
    return f"{local}+{notice_id}.{_tag(notice_id, secret)}@{domain}"


def notice_of_verp(address: str, bounce_address: str, secret: str) -> str | None:
    """The notice a return path belongs to; None for any other address, or a forged tag."""
    local, _, domain = bounce_address.rpartition("@")
    got_local, _, got_domain = address.strip().strip("<>").rpartition("@")
    if got_domain.lower() != domain.lower() or not got_local.lower().startswith(
        local.lower() + "+"
    ):
        return None
    notice_id, _, tag = got_local[len(local) + 1 :].rpartition(".")
    notice_id = notice_id.lower()
    if not _NOTICE_ID.match(notice_id):
        return None
    if not hmac.compare_digest(tag.lower(), _tag(notice_id, secret)):
        return None
    return notice_id


# --------------------------------------------------------------------------- reports


@dataclass(frozen=True, slots=True)
class RecipientReport:
    """One recipient's block of a report, with the notice it is about when the report names it
    (``notice_id`` from the returned headers; the VERP recipient takes precedence)."""

    recipient: str
    report: DeliveryReport
    notice_id: str | None


def parse_report(raw: bytes) -> list[RecipientReport]:
    """The recipient reports in a message: a DSN (multipart/report; report-type=delivery-status)
    gives one per recipient block with an action we understand, a feedback report
    (report-type=feedback-report) one complaint; anything else (an auto-reply, spam) none."""
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    if msg.get_content_type() != "multipart/report":
        return []
    report_type = str(msg.get_param("report-type", "", header="content-type")).lower()
    parts = list(msg.iter_parts()) if isinstance(msg, EmailMessage) else []
    notice_id = _notice_in_returned_headers(parts)
    if report_type == "delivery-status":
        return _dsn_reports(parts, notice_id)
    if report_type == "feedback-report":
        return _feedback_reports(parts, notice_id)
    return []


def _dsn_reports(parts: Sequence[Message], notice_id: str | None) -> list[RecipientReport]:
    out: list[RecipientReport] = []
    for part in parts:
        if part.get_content_type() != "message/delivery-status":
            continue
        # The email package reads message/delivery-status as a list of header blocks: the
        # per-message fields first, then one block per recipient.
        blocks = part.get_payload()
        if not isinstance(blocks, list):
            continue
        for block in blocks[1:]:
            if not isinstance(block, Message):
                continue
            recipient = _address_field(block.get("Final-Recipient")) or _address_field(
                block.get("Original-Recipient")
            )
            detail = _one_line(block.get("Diagnostic-Code", ""))
            report = classify_dsn(
                str(block.get("Action", "")), str(block.get("Status", "")), detail
            )
            if report is not None:
                out.append(RecipientReport(recipient, report, notice_id))
    return out


def _feedback_reports(parts: Sequence[Message], notice_id: str | None) -> list[RecipientReport]:
    for part in parts:
        if part.get_content_type() != "message/feedback-report":
            continue
        fields = _feedback_fields(part)
        if fields.get("feedback-type", "abuse").lower() not in ("abuse", "fraud"):
            return []
        recipient = _address_field(fields.get("original-rcpt-to", ""))
        detail = f"feedback report from {fields.get('user-agent', 'unknown')}"
        return [RecipientReport(recipient, DeliveryReport("complained", detail=detail), notice_id)]
    return []


def _feedback_fields(part: Message) -> dict[str, str]:
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        # parsed like a message/* part: one header block
        return {k.lower(): str(v) for k, v in payload[0].items()}
    text = part.get_payload(decode=True) or b""
    assert isinstance(text, bytes)
    headers = HeaderParser().parsestr(text.decode("utf-8", "replace"))
    return {k.lower(): str(v) for k, v in headers.items()}


def _notice_in_returned_headers(parts: Sequence[Message]) -> str | None:
    """The notice id in the original message's headers (message/rfc822 or text/rfc822-headers)."""
    for part in parts:
        ctype = part.get_content_type()
        headers: Message | None = None
        if ctype in ("message/rfc822", "message/rfc822-headers"):
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                headers = payload[0]
        elif ctype == "text/rfc822-headers":
            data = part.get_payload(decode=True) or b""
            assert isinstance(data, bytes)
            headers = HeaderParser().parsestr(data.decode("utf-8", "replace"))
        if headers is None:
            continue
        notice_id = str(headers.get("X-Recall-Notice-Id", "")).strip().lower()
        if _NOTICE_ID.match(notice_id):
            return notice_id
        found = _MESSAGE_ID.search(str(headers.get("Message-ID", "")))
        if found:
            return found.group(1).lower()
    return None


def notice_of_message_id(message_id: str) -> str | None:
    """The notice of one of our Message-IDs (with or without the angle brackets)."""
    found = _MESSAGE_ID.fullmatch(message_id.strip())
    return found.group(1).lower() if found else None


def _address_field(value: object) -> str:
    """``rfc822; someone@example.com`` -> the address (any address type's value)."""
    text = _one_line(value)
    value_ = text.split(";", 1)[1] if ";" in text else text
    return value_.strip().strip("<>").strip()


def _one_line(value: object) -> str:
    return " ".join(str(value or "").split())[:2000]
