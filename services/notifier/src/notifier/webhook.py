"""The providers' delivery events over HTTP: Mailgun's webhooks (delivered, failed, complained)
for email, Twilio's status callbacks for SMS, as their documentation describes them.

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
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from notifier.bounces import notice_of_message_id
from notifier.delivery import DeliveryRecorder
from notifier.domain import classify_mailgun, classify_twilio
from notifier.settings import Settings
from notifier.sms import twilio_signature

router = APIRouter(prefix="/v1/webhooks")

Short = Annotated[str, Field(max_length=500)]
_NOTICE_ID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


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
        raise HTTPException(404, "no Mailgun webhook here (NOTIFIER_MAILGUN_WEBHOOK_SIGNING_KEY)")
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
        404: {"description": "no webhook signing key configured: no such webhook here"},
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


# ------------------------------------------------------------------- Twilio's status callbacks
# Twilio POSTs each status change of an SMS to the StatusCallback we gave it, form-encoded, signed
# in X-Twilio-Signature: base64 HMAC-SHA1, under the auth token, of the full URL followed by every
# POST parameter's name and value sorted by name (sms.twilio_signature). The URL is ours
# (public_url), with the notice id in it, so the signature also vouches for the notice.


async def form_items(request: Request) -> list[tuple[str, str]]:
    """An application/x-www-form-urlencoded body's fields, in order (what Twilio sends)."""
    body = await request.body()
    try:
        return parse_qsl(body.decode(), keep_blank_values=True, max_num_fields=100)
    except (UnicodeDecodeError, ValueError):
        raise HTTPException(422, "body: not a form (application/x-www-form-urlencoded)") from None


async def twilio_signed(request: Request) -> None:
    settings: Settings = request.app.state.settings
    token = settings.twilio_auth_token
    if settings.sms_provider != "twilio" or not token:
        raise HTTPException(404, "no Twilio webhook here (NOTIFIER_SMS_PROVIDER=twilio)")
    given = request.headers.get("x-twilio-signature", "")
    if not given:
        raise _unsigned("X-Twilio-Signature: missing")
    url = settings.public_url.rstrip("/") + request.url.path
    if request.url.query:
        url += "?" + request.url.query
    params = await form_items(request)
    if not hmac.compare_digest(twilio_signature(token, url, params), given):
        raise _unsigned("X-Twilio-Signature: does not match the auth token")


@router.post(
    "/twilio",
    response_model=WebhookAnswer,
    tags=["delivery"],
    summary="Twilio SMS status callbacks (signed by Twilio)",
    description="No API key: Twilio signs each request (`X-Twilio-Signature`), checked first.",
    responses={
        401: {"description": "signature missing or wrong"},
        422: {"description": "a field is missing"},
        404: {"description": "the SMS channel is not configured: no such webhook here"},
    },
    dependencies=[Depends(twilio_signed)],
)
async def twilio_status(
    request: Request,
    notice_id: Annotated[str, Query(pattern=_NOTICE_ID_PATTERN)],
) -> WebhookAnswer:
    form = dict(await form_items(request))
    status = form.get("MessageStatus", "")
    if not status:
        raise HTTPException(422, "MessageStatus: required")
    report = classify_twilio(status, form.get("ErrorCode", ""))
    if report is None:
        return WebhookAnswer(recorded=False)
    recorder: DeliveryRecorder = request.app.state.delivery
    change = await recorder.record(
        notice_id, report, source="twilio", at=request.app.state.clock.now()
    )
    return WebhookAnswer(recorded=change is not None and change.delivery is not None)
