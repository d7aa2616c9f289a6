"""HTTP pieces every service shares: health, readiness, metrics, correlation ids, error shape."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from recall_shared.logging import correlation_id_var, new_correlation_id
from recall_shared.service import ServiceRuntime

CORRELATION_HEADER = "X-Correlation-Id"


def runtime_of(request: Request) -> ServiceRuntime:
    return request.app.state.runtime


async def _session(request: Request) -> AsyncIterator[AsyncSession]:
    async with runtime_of(request).session_factory() as session:
        yield session


async def _runtime(request: Request) -> ServiceRuntime:
    # async on purpose: FastAPI runs a plain ``def`` dependency in its thread pool, a thread hop per request.
    return runtime_of(request)


SessionDep = Annotated[AsyncSession, Depends(_session)]
RuntimeDep = Annotated[ServiceRuntime, Depends(_runtime)]


_ERROR_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    422: "validation_failed",
    429: "too_many_requests",
}


def validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:10]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        parts.append(f"{loc}: {err.get('msg')}")
    return "; ".join(parts)


class CorrelationMiddleware:
    """Takes ``X-Correlation-Id`` (or makes one) for the request's logs and events, echoes it, and counts
    the request. Plain ASGI: no per-request task or body streaming as BaseHTTPMiddleware would add."""

    def __init__(self, app: ASGIApp, runtime: ServiceRuntime) -> None:
        self.app = app
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v for k, v in scope["headers"] if k == b"x-correlation-id"), b"")
        cid = given.decode("latin-1")[:128] or new_correlation_id()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-correlation-id", cid.encode("latin-1")),
                ]
            await send(message)

        token = correlation_id_var.set(cid)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            correlation_id_var.reset(token)
            route = getattr(scope.get("route"), "path", "unmatched")
            self.runtime.metrics.http_requests.labels(scope["method"], route, str(status)).inc()


def install_common(app: FastAPI, runtime: ServiceRuntime) -> None:
    """Health, readiness, metrics, correlation-id middleware and a uniform 422."""
    app.state.runtime = runtime

    app.add_middleware(CorrelationMiddleware, runtime=runtime)

    @app.exception_handler(RequestValidationError)
    async def on_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(
            status_code=422,
            content={
                "error": "validation_failed",
                "message": validation_message(exc),
                "detail": jsonable_encoder(exc.errors()),
            },
        )

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, exc: StarletteHTTPException) -> Response:
        # One error shape everywhere: {"error": code, "message": text}; "detail" kept as FastAPI clients expect.
        if exc.status_code == 304:
            return Response(status_code=304, headers=exc.headers)
        if isinstance(exc.detail, dict):
            body = {
                "error": exc.detail.get("error", _ERROR_CODES.get(exc.status_code, "error")),
                "message": str(exc.detail.get("message", "")),
                "detail": exc.detail,
            }
        else:
            body = {
                "error": _ERROR_CODES.get(exc.status_code, "error"),
                "message": str(exc.detail),
                "detail": exc.detail,
            }
        return JSONResponse(
            status_code=exc.status_code, content=jsonable_encoder(body), headers=exc.headers
        )

    @app.get("/healthz", tags=["operations"], summary="The process is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": runtime.settings.service_name}

    @app.get("/readyz", tags=["operations"], summary="Database and Kafka are reachable")
    async def readyz() -> JSONResponse:
        checks = await runtime.readiness()
        ready = all(v == "ok" for v in checks.values())
        return JSONResponse(
            status_code=200 if ready else 503,
            content={"ready": ready, "checks": checks, **runtime.details()},
        )

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(runtime.metrics.render(), media_type=CONTENT_TYPE_LATEST)
