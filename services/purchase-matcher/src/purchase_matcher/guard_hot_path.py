"""POST /v1/sellability-checks for an operator key and a valid body, answered beneath FastAPI's
routing and dependency solving (as customer-api's banner: docs/decisions/0006).

Checkout calls the guard for every basket, and FastAPI's per-request machinery (route matching,
dependency solving, body parsing) cost more than the lookup itself. This ASGI middleware, inside the
shared ones (correlation ids, rate limits, the input guard, so the body is already bounded and
screened), answers the common case with the route's own pieces: the same request model, the same
key check (``OperatorDep``'s function) and the same ``SellabilityGuard.check``, so the answer is the
same. Anything else (no key, a refused key, a body the model refuses, another path or method) goes
on to the FastAPI route unchanged, which gives the usual 401, 403 and 422; the route also keeps the
operation in the OpenAPI document.

While the guard's index is current (purchase_matcher.guard_index), a key whose hash it holds as an
operator's is answered without reading ``seller_keys``: one more round trip per check saved. Any
other key (a seller's, a revoked or new one, or any key while the index is not current) is checked
on the read pool as before.
"""

from __future__ import annotations

from fastapi import HTTPException
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from purchase_matcher.guard import (
    GUARD_PATH,
    SellabilityGuard,
    SellabilityRequest,
    require_operator,
    router,
)
from recall_shared.auth import hash_api_key
from recall_shared.logging import note_principal


class GuardHotPath:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.route = next(r for r in router.routes if getattr(r, "path", None) == GUARD_PATH)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not (
            scope["type"] == "http"
            and scope["path"] == GUARD_PATH
            and scope["method"] == "POST"
            and not scope.get("root_path")
        ):
            await self.app(scope, receive, send)
            return
        key = next((v.decode("latin-1") for n, v in scope["headers"] if n == b"x-api-key"), None)
        body = await _body(receive)
        if key:
            guard: SellabilityGuard = scope["app"].state.sellability_guard
            try:
                asked = SellabilityRequest.model_validate_json(body)
                if not self._known_operator(guard, key, scope):
                    request = Request(scope)
                    await require_operator(request, request.app.state.runtime, key)
            except (ValidationError, HTTPException):
                pass  # the route answers it, in its usual way
            else:
                scope["route"] = self.route
                answer = Response(await guard.check(asked), media_type="application/json")
                await answer(scope, receive, send)
                return
        await self.app(scope, _replay(body, receive), send)

    @staticmethod
    def _known_operator(guard: SellabilityGuard, key: str, scope: Scope) -> bool:
        state = guard.index.fresh_state()
        if state is None or not state.operator_keys:
            return False
        pepper = scope["app"].state.runtime.settings.api_key_pepper
        if hash_api_key(key, pepper) not in state.operator_keys:
            return False
        note_principal("operator")  # for the request's access log line
        return True


async def _body(receive: Receive) -> bytes:
    chunks, more = [], True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
