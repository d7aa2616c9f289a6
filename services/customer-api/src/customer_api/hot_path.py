"""GET /v1/me/banner for a valid bearer token, answered beneath FastAPI's routing and dependency
solving.

The orders page asks for the banner on every view. After the query itself was made cheap (one round
trip on raw asyncpg, JSON written from the row), FastAPI's per-request machinery (exception and
exit-stack middlewares, route matching, dependency solving, parameter validation) was the largest
cost left. This ASGI middleware answers the one common case, a GET with a bearer token that
verifies, with the same function as the route (:func:`customer_api.api.banner_response`), so the
answer is the same, byte for byte. Everything else (no token, a refused token, another method or
path) goes on to the FastAPI route unchanged, which gives the usual 401 and error shapes; the route
also keeps the banner in the OpenAPI document.

It sits inside the correlation middleware, so correlation ids and the request metrics (labelled with
the route's path, as FastAPI's routing would) are the same for either way.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from customer_api.api import banner_response, router
from recall_shared.auth import CustomerTokenVerifier, InvalidToken

BANNER_PATH = "/v1/me/banner"


class BannerHotPath:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.route = next(r for r in router.routes if getattr(r, "path", None) == BANNER_PATH)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["path"] == BANNER_PATH
            and scope["method"] == "GET"
            and not scope.get("root_path")
        ):
            authorization = if_none_match = None
            for name, value in scope[
                "headers"
            ]:  # the first of each, as Starlette's Headers.get gives
                if name == b"authorization" and authorization is None:
                    authorization = value.decode("latin-1")
                elif name == b"if-none-match" and if_none_match is None:
                    if_none_match = value.decode("latin-1")
            scheme, _, token = (authorization or "").partition(" ")
            token = token.strip()
            if token and scheme.lower() == "bearer":
                state = scope["app"].state
                verifier: CustomerTokenVerifier = state.token_verifier
                try:
                    customer_id = verifier.customer_id(token)
                except InvalidToken:
                    pass  # the route refuses it, with its usual answer
                else:
                    scope["route"] = self.route
                    response = await banner_response(state, customer_id, if_none_match)
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)
