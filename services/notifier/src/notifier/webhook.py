"""The email provider's delivery events over HTTP: Mailgun's webhooks (delivered, failed,
complained), as its documentation describes them.

Mailgun signs each request in its body: ``signature.signature`` is the hex HMAC-SHA256, under the
webhook signing key, of ``signature.timestamp`` followed by ``signature.token``. A request whose
signature does not match, or that was signed longer ago than ``mailgun_webhook_max_age_s`` (a
replay), is refused with 401; the event names its notice by the Message-ID we gave it
(``event-data.message.headers.message-id``, without angle brackets). Events about no notice of
ours, or that say nothing about delivery (opened, clicked), are taken (200) and counted: a non-2xx
answer would only make Mailgun retry them. There is no API key: the route is public at the HTTP
level (tests/contracts/test_route_auth.py lists it) and the signature is its credential.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from notifier.bounces import notice_of_message_id
from notifier.delivery import DeliveryRecorder
from notifier.domain import classify_mailgun
from notifier.settings import Settings

router = APIRouter(prefix="/v1/webhooks")

Short = Annotated[str, Field(max_length=500)]


class MailgunSignature(BaseModel):
    timestamp: Annotated[str, Field(min_length=1, max_length=20, pattern=r"^[0-9]+$")]
    token: Annotated[str, Field(min_length=1, max_length=200)]
    signature: Annotated[str, Field(min_length=64, max_length=64, pattern=r"^[0-9a-fA-F]+$")]


class MailgunDeliveryStatus(BaseModel):
    model_config = ConfigDict(extra="allow")
    code: int | None = None
    message: Annotated[str, Field(max_length=5000)] = ""
    description: Annotated[str, Field(max_length=5000)] = ""
    enhanced_code: Annotated[str, Field(alias="enhanced-code", max_length=20)] = ""


class MailgunMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    headers: dict[str, Any] = {}


class MailgunEventData(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)
    event: Short
    severity: Short = ""
    recipient: Short = ""
    timestamp: float | None = None
    message: MailgunMessage = MailgunMessage()
    delivery_status: Annotated[MailgunDeliveryStatus, Field(alias="delivery-status")] = (
        MailgunDeliveryStatus()
    )


class MailgunWebhook(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    signature: MailgunSignature
    event_data: Annotated[MailgunEventData, Field(alias="event-data")]


class WebhookAnswer(BaseModel):
    recorded: bool = Field(description="The event changed what we know about one of our notices")


def mailgun_signature(signing_key: str, timestamp: str, token: str) -> str:
    """What Mailgun sends in ``signature.signature``."""
    return hmac.new(signing_key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()


async def mailgun_signed(request: Request) -> None:
    """Mailgun's signature, checked before the body is validated: a request without a good one
    is 401 whatever else it carries (a dependency runs before FastAPI's body validation)."""
    settings: Settings = request.app.state.settings
    key = settings.mailgun_webhook_signing_key
    if not key:
        raise HTTPException(503, "the Mailgun webhook is not configured")
    try:
        body = json.loads(await request.body())
        sig = MailgunSignature.model_validate(body["signature"])
    except (ValueError, KeyError, TypeError, ValidationError):
        raise _unsigned("signature: missing or malformed") from None
    expected = mailgun_signature(key, sig.timestamp, sig.token)
    if not hmac.compare_digest(expected, sig.signature.lower()):
        raise _unsigned("signature.signature: does not match the webhook signing key")
    age = request.app.state.clock.now().timestamp() - int(sig.timestamp)
    if abs(age) > settings.mailgun_webhook_max_age_s:
        raise _unsigned(
            f"signature.timestamp: signed {int(age)} s ago, more than "
            f"{int(settings.mailgun_webhook_max_age_s)} s"
        )


def _unsigned(message: str) -> HTTPException:
    return HTTPException(401, message, headers={"WWW-Authenticate": "Mailgun-Signature"})


@router.post(
    "/mailgun",
    response_model=WebhookAnswer,
    tags=["delivery"],
    summary="Mailgun delivery events (signed by Mailgun)",
    description="No API key: each request carries Mailgun's HMAC-SHA256 signature in its body "
    "(`signature.timestamp`, `token`, `signature`), checked first.",
    responses={
        401: {"description": "signature missing, wrong or too old"},
        503: {"description": "no webhook signing key configured"},
    },
    dependencies=[Depends(mailgun_signed)],
)
async def mailgun_webhook(body: MailgunWebhook, request: Request) -> WebhookAnswer:
    recorder: DeliveryRecorder = request.app.state.delivery
    now = request.app.state.clock.now()
    data = body.event_data
    status = data.delivery_status
    detail = " ".join(f"{status.code or ''} {status.message} {status.description}".split())
    report = classify_mailgun(
        data.event, data.severity, status.enhanced_code or str(status.code or ""), detail[:2000]
    )
    if report is None:
        return WebhookAnswer(recorded=False)
    headers = {k.lower(): v for k, v in data.message.headers.items()}
    notice_id = notice_of_message_id(str(headers.get("message-id", "")))
    if notice_id is None:
        recorder.unmatched(report, source="mailgun")
        return WebhookAnswer(recorded=False)
    at = datetime.fromtimestamp(data.timestamp, UTC) if data.timestamp else now
    change = await recorder.record(notice_id, report, source="mailgun", at=at)
    recorded = change is not None and (change.delivery is not None or change.resend)
    return WebhookAnswer(recorded=recorded)
