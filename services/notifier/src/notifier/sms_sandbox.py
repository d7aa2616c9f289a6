"""A local SMS sandbox that implements the part of Twilio's Messages API the notifier uses, for
development and tests. It sends nothing: every message stays in memory.

- ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` (form: ``To``, ``From``, ``Body``,
  ``StatusCallback``; HTTP Basic auth with the sandbox's account SID and auth token) answers
  ``201`` with a message resource whose ``sid`` starts with ``SMsandbox`` (never a real message), or
  Twilio's error object (``code``, ``message``, ``more_info``, ``status``): ``20003`` on bad
  credentials, ``21211`` for a number that is not E.164, ``21602`` without a body, ``21617`` over
  1600 characters.
- Twilio's test numbers behave as Twilio documents them for test credentials: ``+15005550001``
  is invalid (``21211``), ``+15005550009`` cannot receive SMS (``21614``); and, beyond Twilio, the
  sandbox reports ``+15005550003`` as ``undelivered`` (``30003``, unreachable handset) after
  ``sent``, so the notifier's failure path can be exercised end to end. Any other number is
  ``sent`` then ``delivered``.
- Each status change is POSTed to ``StatusCallback`` form-encoded (``MessageSid``,
  ``MessageStatus``, ``ErrorCode``, ``To``, ``From``, ``AccountSid``, ``ApiVersion``), signed in
  ``X-Twilio-Signature`` with the auth token exactly as Twilio signs (:func:`twilio_signature`).
- ``GET /2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json`` returns a message;
  ``GET /sandbox/messages?to=`` lists them (the sandbox's own, for tests and the demo).

Run: ``python -m notifier.sms_sandbox --port 8093`` and point the notifier at it
(``NOTIFIER_SMS_PROVIDER=twilio``, ``NOTIFIER_TWILIO_BASE_URL=http://127.0.0.1:8093``, the sandbox's
``--account-sid`` / ``--auth-token``).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import contextlib
import hmac
import logging
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qsl

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from notifier.sms import twilio_signature

log = logging.getLogger(__name__)

E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
INVALID_NUMBER = "+15005550001"
NOT_SMS_CAPABLE = "+15005550009"
UNREACHABLE_HANDSET = "+15005550003"

Callback = Callable[[str, dict[str, str], dict[str, str]], Awaitable[None]]


@dataclass
class SandboxSms:
    account_sid: str = "ACsandbox0000000000000000000000000"
    auth_token: str = "sandbox-auth-token"
    callback_delay_s: float = 0.0
    messages: dict[str, dict[str, Any]] = field(default_factory=dict)
    callback: Callback | None = None  # default: a real HTTP POST
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)


def _error(status: int, code: int, message: str) -> JSONResponse:
    return JSONResponse(
        {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
        status_code=status,
    )


def _authorized(request: Request, sandbox: SandboxSms) -> bool:
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("basic "):
        return False
    try:
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    return hmac.compare_digest(user, sandbox.account_sid) and hmac.compare_digest(
        password, sandbox.auth_token
    )


def create_sms_sandbox_app(sandbox: SandboxSms | None = None) -> FastAPI:
    sandbox = sandbox or SandboxSms()
    # One client for every status callback: a client per callback costs more than the request
    # (its TLS context), which made the sandbox, not the caller, the limit under load.
    clients: list[httpx.AsyncClient] = []

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            for client in clients:
                await client.aclose()

    app = FastAPI(
        title="SMS sandbox (Twilio Messages API subset; sends nothing)", lifespan=lifespan
    )
    app.state.sandbox = sandbox
    base = "/2010-04-01/Accounts/{account_sid}"

    async def post_callback(url: str, data: dict[str, str], headers: dict[str, str]) -> None:
        if not clients:
            clients.append(httpx.AsyncClient(timeout=10))
        await clients[0].post(url, data=data, headers=headers)

    async def report(msg: dict[str, Any], statuses: list[tuple[str, str]], url: str) -> None:
        send = sandbox.callback or post_callback
        for status, error_code in statuses:
            await asyncio.sleep(sandbox.callback_delay_s)
            msg["status"], msg["error_code"] = status, (int(error_code) if error_code else None)
            data = {
                "AccountSid": sandbox.account_sid,
                "ApiVersion": "2010-04-01",
                "MessageSid": msg["sid"],
                "SmsSid": msg["sid"],
                "MessageStatus": status,
                "SmsStatus": status,
                "To": msg["to"],
                "From": msg["from"],
            }
            if error_code:
                data["ErrorCode"] = error_code
            signature = twilio_signature(sandbox.auth_token, url, data.items())
            try:
                await send(url, data, {"X-Twilio-Signature": signature})
            except Exception:
                log.warning("sandbox status callback failed", exc_info=True)

    @app.post(base + "/Messages.json", status_code=201)
    async def create_message(account_sid: str, request: Request) -> Any:
        if account_sid != sandbox.account_sid or not _authorized(request, sandbox):
            return _error(401, 20003, "Authenticate")
        try:
            form = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
        except (UnicodeDecodeError, ValueError):
            return _error(400, 21602, "The request body is not a form.")
        to, from_ = form.get("To", ""), form.get("From", "")
        body, callback = form.get("Body", ""), form.get("StatusCallback", "")
        if not E164.match(to) or to == INVALID_NUMBER:
            return _error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if to == NOT_SMS_CAPABLE:
            return _error(400, 21614, f"'To' number {to} is not a valid mobile number")
        if not from_:
            return _error(400, 21603, "A 'From' or 'MessagingServiceSid' parameter is required")
        if not body:
            return _error(400, 21602, "Message body is required.")
        if len(body) > 1600:
            return _error(
                400, 21617, "The concatenated message body exceeds the 1600 character limit."
            )
        sid = "SMsandbox" + uuid.uuid4().hex[:25]
        msg = {
            "sid": sid,
            "account_sid": account_sid,
            "to": to,
            "from": from_,
            "body": body,
            "status": "queued",
            "num_segments": str(max(1, -(-len(body) // 153))),
            "direction": "outbound-api",
            "api_version": "2010-04-01",
            "date_created": formatdate(usegmt=True),
            "error_code": None,
            "error_message": None,
            "price": None,
            "uri": f"/2010-04-01/Accounts/{account_sid}/Messages/{sid}.json",
        }
        sandbox.messages[sid] = msg
        if callback:
            fate = [("sent", ""), ("undelivered", "30003")]
            if to != UNREACHABLE_HANDSET:
                fate = [("sent", ""), ("delivered", "")]
            task = asyncio.create_task(report(msg, fate, callback))
            sandbox._tasks.add(task)
            task.add_done_callback(sandbox._tasks.discard)
        return JSONResponse(dict(msg), status_code=201)

    @app.get(base + "/Messages/{sid}.json")
    async def get_message(account_sid: str, sid: str, request: Request) -> Any:
        if account_sid != sandbox.account_sid or not _authorized(request, sandbox):
            return _error(401, 20003, "Authenticate")
        msg = sandbox.messages.get(sid)
        if msg is None:
            return _error(404, 20404, f"The requested resource {request.url.path} was not found")
        return msg

    @app.get("/sandbox/messages")
    async def list_messages(to: str = "") -> list[dict[str, Any]]:
        return [m for m in sandbox.messages.values() if not to or m["to"] == to]

    return app


def main(argv: list[str] | None = None) -> int:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8093)
    parser.add_argument("--account-sid", default=SandboxSms.account_sid)
    parser.add_argument("--auth-token", default=SandboxSms.auth_token)
    args = parser.parse_args(argv)
    sandbox = SandboxSms(account_sid=args.account_sid, auth_token=args.auth_token)
    uvicorn.run(create_sms_sandbox_app(sandbox), host=args.host, port=args.port)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
