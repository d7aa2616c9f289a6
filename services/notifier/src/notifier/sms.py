"""The SMS channel's port and its adapter for Twilio's Programmable Messaging REST API.

:class:`SmsProvider` is what the notifier needs of any SMS provider: send one text to one number,
with a URL for status reports, and say whether a refusal is for good. :class:`TwilioSms` speaks
Twilio's documented contract: ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json``
(form-encoded ``To``, ``From``, ``Body``, ``StatusCallback``; HTTP Basic auth with the account SID
and auth token) answering ``201`` with the message resource (``sid``, ``status``) or a 4xx error
object (``code``, ``message``). Twilio then POSTs the message's status changes (``MessageSid``,
``MessageStatus``, ``ErrorCode``) to ``StatusCallback``, signed in ``X-Twilio-Signature``
(:func:`twilio_signature`).

In development and tests the adapter talks to the local sandbox, :mod:`notifier.sms_sandbox`,
which implements the same contract.

The adapter describes its HTTP request on the current span (the SMS sender's ``sms send`` client
span, in the notice's trace), under the OpenTelemetry HTTP client attribute names.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

import httpx
from opentelemetry import trace


@dataclass(frozen=True, slots=True)
class SmsAccepted:
    """The provider took the message: its id (Twilio's ``sid``) and first status."""

    provider_id: str
    status: str


class SmsError(Exception):
    """A failed send. ``permanent``: the provider refused for good (an invalid or unreachable
    number); otherwise retried. ``code``: the provider's error code, when it gave one."""

    def __init__(self, message: str, *, permanent: bool, code: str = "") -> None:
        super().__init__(message)
        self.permanent = permanent
        self.code = code


class SmsProvider(Protocol):
    async def send(self, *, to: str, body: str, status_callback: str) -> SmsAccepted: ...


def twilio_signature(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """Twilio's request signature: base64 HMAC-SHA1, under the auth token, of the full URL
    followed by each POST parameter's name and value, sorted by name."""
    payload = url + "".join(k + v for k, v in sorted(params))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


class TwilioSms:
    """Twilio's Messages API (or the sandbox at ``base_url``)."""

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        from_: str,
        base_url: str = "https://api.twilio.com",
        timeout_s: float = 10.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.account_sid = account_sid
        self.from_ = from_
        self._auth = httpx.BasicAuth(account_sid, auth_token)
        self._url = f"{base_url.rstrip('/')}/2010-04-01/Accounts/{account_sid}/Messages.json"
        url = httpx.URL(self._url)
        self._request_attributes: dict[str, str | int] = {
            "http.request.method": "POST",
            "url.full": self._url,
            "server.address": url.host,
            "server.port": url.port or (443 if url.scheme == "https" else 80),
        }
        self._client = client or httpx.AsyncClient(timeout=timeout_s)
        self._own_client = client is None

    async def send(self, *, to: str, body: str, status_callback: str) -> SmsAccepted:
        data = {"To": to, "From": self.from_, "Body": body, "StatusCallback": status_callback}
        span = trace.get_current_span()  # a no-op span when tracing is off
        span.set_attributes(self._request_attributes)
        try:
            r = await self._client.post(self._url, data=data, auth=self._auth)
        except httpx.HTTPError as exc:
            span.set_attribute("error.type", type(exc).__qualname__)
            raise SmsError(f"{type(exc).__name__}: {exc}", permanent=False) from exc
        span.set_attribute("http.response.status_code", r.status_code)
        if r.status_code in (200, 201):
            msg = r.json()
            return SmsAccepted(str(msg["sid"]), str(msg.get("status") or "queued"))
        try:
            err = r.json()
        except ValueError:
            err = {}
        code = str(err.get("code") or "")
        span.set_attribute("error.type", str(r.status_code))
        message = f"Twilio {r.status_code} {code}: {err.get('message') or r.text[:200]}"
        # 429 and 5xx pass; a 4xx (bad number, unreachable, refused) stays refused. A 401 is our
        # configuration, not the number: retried, so fixing the credentials lets it go out.
        permanent = 400 <= r.status_code < 500 and r.status_code not in (401, 403, 429)
        raise SmsError(message, permanent=permanent, code=code)

    async def close(self) -> None:
        if self._own_client:
            await self._client.aclose()
