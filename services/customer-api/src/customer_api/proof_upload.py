"""The recalls page's proof of destruction upload: ``POST /recalls/{alert_id}/proof`` (multipart,
field ``photo``), checked here (size while it streams in, an image type by its content, the CSRF
token), then forwarded to refund-logistics with the customer's own token (rls_client.py). Every
failure comes back to the page as its own message (``?error=proof_...``)."""

from __future__ import annotations

from email.message import Message
from email.parser import BytesParser
from email.policy import HTTP
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response

from customer_api import logic
from customer_api.case_progress import may_upload_proof
from customer_api.pages import (
    SESSION_COOKIE,
    _csrf_ok,
    _not_found,
    _redirect,
    _render,
    _session,
)
from customer_api.rls_client import ProofAnswer, RefundLogisticsClient
from recall_shared.http import SessionDep

router = APIRouter(include_in_schema=False)

PROOF_UPLOAD_PATH = r"/recalls/[^/]+/proof"
# Multipart framing and the small fields around the photo.
FRAMING_BYTES = 64 * 1024
IMAGE_SIGNATURES: tuple[tuple[bytes, int, str], ...] = (
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"GIF8", 0, "image/gif"),
    (b"WEBP", 8, "image/webp"),
)


def upload_body_limit(max_bytes: int) -> int:
    """What the HTTP guard lets through on the upload path: well above the photo's limit, so that a
    photo too large is read (and dropped) here and answered on the page, not with a bare 413."""
    return 4 * (max_bytes + FRAMING_BYTES)


def sniff_image(data: bytes) -> str | None:
    for magic, offset, kind in IMAGE_SIGNATURES:
        if data[offset : offset + len(magic)] == magic:
            return kind
    return None


async def read_bounded(request: Request, limit: int) -> bytes | None:
    """The body as it streams in, kept while it is at most ``limit`` bytes; past it the rest is
    read and dropped (memory stays bounded) and the answer is None."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size <= limit:
            chunks.append(chunk)
        elif chunks:
            chunks.clear()
    return b"".join(chunks) if size <= limit else None


def parse_multipart(content_type: str, body: bytes) -> tuple[dict[str, str], Message | None]:
    """The form's text fields and its ``photo`` part (None when absent)."""
    msg = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1", "replace") + b"\r\n\r\n" + body
    )
    fields: dict[str, str] = {}
    photo: Message | None = None
    if not msg.is_multipart():
        return fields, None
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name == "photo" and photo is None:
            photo = part
        elif isinstance(name, str) and part.get_filename() is None:
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes) and len(payload) <= 4096:
                fields[name] = payload.decode("utf-8", "replace")
    return fields, photo


def proof_error(answer: ProofAnswer) -> str | None:
    """refund-logistics' answer as the page's message key; None when the photo was taken."""
    if answer.status in (200, 202):
        return None
    if answer.status == 413:
        return "proof_too_large"
    if answer.status == 422 and "pixels" in answer.message:
        return "proof_small"
    if answer.status in (415, 422):
        return "proof_unreadable"
    if answer.status == 409:
        return "proof_conflict"
    if answer.status == 404:
        return "proof_not_ready"
    return "proof_unavailable"


@router.post("/recalls/{alert_id}/proof")
async def upload_proof(alert_id: str, request: Request, db: SessionDep) -> Response:
    session = _session(request)
    settings = request.app.state.runtime.settings
    max_bytes: int = settings.proof_max_bytes
    ctype = request.headers.get("content-type", "")
    body = await read_bounded(request, max_bytes + FRAMING_BYTES)
    fields, photo = ({}, None) if body is None else parse_multipart(ctype, body)
    back = (
        f"/recalls/{quote(alert_id, safe='')}"
        if fields.get("return_to") == "detail"
        else "/recalls"
    )
    anchor = f"#alert-{quote(alert_id, safe='')}"
    extra = {} if back != "/recalls" else {"alert": alert_id}

    def to_page(**outcome: str) -> Response:
        return _redirect(request, f"{back}?{urlencode({**extra, **outcome})}{anchor}")

    if body is None:
        return to_page(error="proof_too_large")
    if not _csrf_ok(session, fields):
        return _render(
            request,
            "message.html.j2",
            403,
            session=session,
            title_key="forbidden.title",
            text_key="forbidden.text",
        )
    try:
        await logic.own_alert(db, session.customer_id, alert_id)
    except logic.AlertNotFound:
        return _not_found(request, session)
    payload = photo.get_payload(decode=True) if photo is not None else None
    image = payload if isinstance(payload, bytes) else b""
    if not image:
        return to_page(error="proof_missing")
    if len(image) > max_bytes:
        return to_page(error="proof_too_large")
    kind = sniff_image(image)
    if kind is None:
        return to_page(error="proof_type")
    remedy = await logic.remedy_of(db, alert_id)
    if remedy is None or remedy.case_id is None:
        return to_page(error="proof_not_ready")
    if not may_upload_proof(remedy.remedy, remedy.case_state, remedy.waiting_for, True):
        return to_page(error="proof_conflict")
    client: RefundLogisticsClient = request.app.state.refund_logistics
    answer = await client.submit_proof(
        remedy.case_id, request.cookies.get(SESSION_COOKIE, ""), image, kind
    )
    error = proof_error(answer)
    return to_page(error=error) if error else to_page(done="proof")
