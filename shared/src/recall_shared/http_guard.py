"""Every request's input checked in one place, before any route, database or encoder sees it.

- Size: a request body is counted while it streams in (a declared Content-Length and a chunked body
  alike); past the route's limit the answer is 413. JSON and form bodies default to
  ``max_body_bytes``; a route that takes more (a photo upload) or less (a small HTML form) is named
  in ``body_limits``.
- Content: NUL and lone surrogates (which PostgreSQL and UTF-8 encoders refuse) and integers beyond
  64 bits (which orjson refuses) are refused with a 422 naming the field, wherever they are: the
  path, a query parameter, a JSON body, an ``application/x-www-form-urlencoded`` form
  (recall_shared.validation).

A body that is not valid JSON goes on unchanged: FastAPI answers it with its usual 422. Other bodies
(images, multipart uploads) are only counted: binary data may hold any byte.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import parse_qsl

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from recall_shared.http_errors import error_response
from recall_shared.validation import find_unsafe, unsafe_text_reason

DEFAULT_MAX_BODY_BYTES = 1024 * 1024
_CHECKED_TYPES = ("application/json", "application/x-www-form-urlencoded")


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body may be at most {limit} bytes")


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return ""


def _unsafe_fields(scope: Scope, body: bytes | None, ctype: str) -> Iterator[tuple[list, str]]:
    """(location, reason) of each value storage refuses, as FastAPI locates fields: path, query,
    body."""
    if reason := unsafe_text_reason(scope["path"]):
        yield ["path"], reason
    query = scope.get("query_string", b"").decode("latin-1")
    for name, value in parse_qsl(query, keep_blank_values=True):
        for text in (name, value):
            if reason := unsafe_text_reason(text):
                yield ["query", name], reason
                break
    if not body:
        return
    decoded: Any
    if ctype == "application/json":
        try:
            decoded = json.loads(body)
        except ValueError:
            return  # not JSON: the route's own parsing answers it
    else:
        decoded = dict(parse_qsl(body.decode("utf-8", "surrogateescape"), keep_blank_values=True))
    for path, reason in find_unsafe(decoded):
        yield ["body", *path], reason
    for path in _non_finite(decoded, ()):
        yield ["body", *path], "must be a finite number (NaN and Infinity are not JSON)"


def _non_finite(value: Any, path: tuple) -> Iterator[tuple]:
    """Python's JSON reader takes NaN, Infinity and 1e999 (as float infinities); nothing else
    does."""
    if isinstance(value, float) and not math.isfinite(value):
        yield path
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _non_finite(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _non_finite(v, (*path, i))


def _refusal(problems: list[tuple[list, str]]) -> Any:
    detail = [{"loc": loc, "msg": msg, "type": "unsafe_value"} for loc, msg in problems[:10]]
    message = "; ".join(
        f"{'.'.join(str(p) for p in loc if p != 'body') or 'body'}: {msg}"
        for loc, msg in problems[:10]
    )
    return error_response(422, message, error="validation_failed", detail=detail)


class RequestGuard:
    """Plain ASGI middleware: the size and content checks above, then the app."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        body_limits: Mapping[str, int] | None = None,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.body_limits = [(re.compile(p), n) for p, n in (body_limits or {}).items()]

    def limit_for(self, path: str) -> int:
        return next((n for p, n in self.body_limits if p.fullmatch(path)), self.max_body_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = _header(scope, b"content-length")
        if declared.isdigit() and int(declared) > limit:
            await error_response(413, BodyTooLarge(limit).detail)(scope, receive, send)
            return
        ctype = _header(scope, b"content-type").split(";")[0].strip().lower()
        body: bytes | None = None
        if ctype in _CHECKED_TYPES:
            try:
                body = await _read_body(receive, limit)
            except BodyTooLarge as exc:
                await error_response(413, exc.detail)(scope, receive, send)
                return
        problems = list(_unsafe_fields(scope, body, ctype))
        if problems:
            await _refusal(problems)(scope, receive, send)
            return
        await self.app(
            scope, _replay(body, receive) if body is not None else _counted(receive, limit), send
        )


async def _read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            break  # a disconnect: the app sees an empty body and the server drops the answer
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body already read, as one message; then the server's own messages (a disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _counted(receive: Receive, limit: int) -> Receive:
    """The server's messages, counting body bytes: past ``limit`` the reader gets a 413
    (BodyTooLarge)."""
    size = 0

    async def counted() -> Message:
        nonlocal size
        message = await receive()
        if message["type"] == "http.request":
            size += len(message.get("body", b""))
            if size > limit:
                raise BodyTooLarge(limit)
        return message

    return counted
