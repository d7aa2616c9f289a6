"""HTTP pieces every service shares: health, readiness, metrics, correlation ids, the error shape,
the input guard (recall_shared.http_guard), write rate limits (recall_shared.rate_limit) and the
OpenAPI document (recall_shared.openapi)."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Annotated

from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from opentelemetry.trace import Span, SpanKind, StatusCode
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from recall_shared.cursors import CURSOR_MAX_LENGTH, CURSOR_PATTERN
from recall_shared.http_errors import ERROR_CODES, error_response
from recall_shared.http_guard import DEFAULT_MAX_BODY_BYTES, RequestGuard
from recall_shared.logging import (
    RequestFacts,
    correlation_id_var,
    new_correlation_id,
    request_facts_var,
)
from recall_shared.openapi import install_openapi
from recall_shared.rate_limit import WriteRateLimit
from recall_shared.service import ServiceRuntime
from recall_shared.telemetry import context_of, within

log = logging.getLogger(__name__)
# One line per request (recall_shared.http.CorrelationMiddleware); its own logger so an operator
# can route or silence it alone.
access_log = logging.getLogger("recall_shared.access")
# Probes and scrapes come every few seconds from machines: their lines are DEBUG, not INFO.
QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})

CORRELATION_HEADER = "X-Correlation-Id"


def runtime_of(request: Request) -> ServiceRuntime:
    return request.app.state.runtime


async def _session(request: Request) -> AsyncIterator[AsyncSession]:
    async with runtime_of(request).session_factory() as session:
        yield session


async def _runtime(request: Request) -> ServiceRuntime:
    # async on purpose: FastAPI runs a plain ``def`` dependency in its thread pool, a thread hop per
    # request.
    return runtime_of(request)


SessionDep = Annotated[AsyncSession, Depends(_session)]
RuntimeDep = Annotated[ServiceRuntime, Depends(_runtime)]

# The shape of every id the services hand out or take (uuids, "sale:<uuid>", seller ids): a
# malformed one is a 422 naming the parameter, before any query.
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@-]*$"
ID_MAX_LENGTH = 200
PathId = Annotated[str, Path(min_length=1, max_length=ID_MAX_LENGTH, pattern=ID_PATTERN)]
QueryId = Annotated[str, Query(min_length=1, max_length=ID_MAX_LENGTH, pattern=ID_PATTERN)]
Cursor = Annotated[
    str | None,
    Query(
        description="next_cursor of the previous page",
        max_length=CURSOR_MAX_LENGTH,
        pattern=CURSOR_PATTERN,
    ),
]


class Readiness(BaseModel):
    ready: bool
    checks: dict[str, str] = Field(description='Each dependency: "ok" or what failed')


def validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:10]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        parts.append(f"{loc}: {err.get('msg')}")
    return "; ".join(parts)


class CorrelationMiddleware:
    """Takes ``X-Correlation-Id`` (or makes one) for the request's logs and events, echoes it,
    counts and times the request, and writes its access log line. Plain ASGI: no per-request task
    or body streaming as BaseHTTPMiddleware would add.

    An unexpected exception ends here: logged, answered 500 with the error shape, and not raised
    further. Raised on, Starlette's ServerErrorMiddleware would answer the same 500 and then
    re-raise, and uvicorn, seeing an exception after the response started, closes the connection: a
    keep-alive client's next request on it was reset."""

    def __init__(self, app: ASGIApp, runtime: ServiceRuntime) -> None:
        self.app = app
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        given = next((v for k, v in scope["headers"] if k == b"x-correlation-id"), b"")
        cid = given.decode("latin-1")[:128] or new_correlation_id()
        status = 500
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-correlation-id", cid.encode("latin-1")),
                ]
            await send(message)

        facts = RequestFacts()
        tokens = (correlation_id_var.set(cid), request_facts_var.set(facts))
        span = self._server_span(scope) if self.runtime.telemetry.enabled else None
        try:
            with within(span):
                await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("unexpected error in %s %s", scope["method"], scope["path"])
            if not started:
                await error_response(500, "internal server error")(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - began
            route = getattr(scope.get("route"), "path", "unmatched")
            traced: dict[str, str] = {}
            if span is not None:
                ctx = span.get_span_context()
                traced = {"trace_id": f"{ctx.trace_id:032x}", "span_id": f"{ctx.span_id:016x}"}
                span.update_name(f"{scope['method']} {route}")
                span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_status(StatusCode.ERROR)
                span.end()
            metrics = self.runtime.metrics
            metrics.http_requests.labels(scope["method"], route, str(status)).inc()
            metrics.http_duration.labels(scope["method"], route).observe(elapsed)
            access_log.log(
                logging.DEBUG if route in QUIET_ROUTES else logging.INFO,
                "request",
                extra={
                    **traced,
                    "method": scope["method"],
                    "route": route,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 3),
                    "principal": facts.principal,
                },
            )
            request_facts_var.reset(tokens[1])
            correlation_id_var.reset(tokens[0])

    def _server_span(self, scope: Scope) -> Span:
        """The request's span, a child of the caller's when it sent a ``traceparent``."""
        carrier = {
            k.decode("latin-1"): v.decode("latin-1")
            for k, v in scope["headers"]
            if k in (b"traceparent", b"tracestate")
        }
        return self.runtime.telemetry.tracer.start_span(
            scope["method"],
            context=context_of(carrier),
            kind=SpanKind.SERVER,
            attributes={"http.request.method": scope["method"], "url.path": scope["path"]},
        )


def install_common(
    app: FastAPI,
    runtime: ServiceRuntime,
    *,
    body_limits: Mapping[str, int] | None = None,
    session_cookies: Sequence[str] = (),
) -> None:
    """Health, readiness, metrics, the middleware (correlation ids, rate limits, input guard), the
    error shape for every error, and the OpenAPI document.

    ``body_limits``: path patterns (regular expressions, whole path) whose body limit is not the
    settings' ``http_max_body_bytes``. ``session_cookies``: cookies that carry a customer token (for
    rate limits)."""
    app.state.runtime = runtime
    settings = runtime.settings

    # add_middleware puts each one outside the ones before: guard innermost, correlation outermost.
    app.add_middleware(
        RequestGuard,
        max_body_bytes=getattr(settings, "http_max_body_bytes", DEFAULT_MAX_BODY_BYTES),
        body_limits=body_limits,
    )
    app.add_middleware(
        WriteRateLimit,
        limits=getattr(settings, "write_rate_limit", ""),
        cookies=session_cookies,
    )
    app.add_middleware(CorrelationMiddleware, runtime=runtime)
    install_openapi(app)

    @app.exception_handler(RequestValidationError)
    async def on_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, validation_message(exc), detail=jsonable_encoder(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, exc: StarletteHTTPException) -> Response:
        # One error shape everywhere: {"error": code, "message": text}; "detail" kept as FastAPI
        # clients expect.
        if exc.status_code == 304:
            return Response(status_code=304, headers=exc.headers)
        if isinstance(exc.detail, dict):
            body = {
                "error": exc.detail.get("error", ERROR_CODES.get(exc.status_code, "error")),
                "message": str(exc.detail.get("message", "")),
                "detail": exc.detail,
            }
        else:
            body = {
                "error": ERROR_CODES.get(exc.status_code, "error"),
                "message": str(exc.detail),
                "detail": exc.detail,
            }
        return JSONResponse(
            status_code=exc.status_code, content=jsonable_encoder(body), headers=exc.headers
        )

    @app.get("/healthz", tags=["operations"], summary="The process is up (public)")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": runtime.settings.service_name}

    @app.get(
        "/readyz",
        tags=["operations"],
        summary="Database and Kafka are reachable (public)",
        responses={503: {"description": "Not ready", "model": Readiness}},
        response_model=Readiness,
    )
    async def readyz() -> JSONResponse:
        checks = await runtime.readiness()
        ready = all(v == "ok" for v in checks.values())
        return JSONResponse(
            status_code=200 if ready else 503,
            content={"ready": ready, "checks": checks, **runtime.details()},
        )

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics", include_in_schema=False)
    async def metrics() -> Response:
        await runtime.metrics.refresh(runtime.engine, settings.metrics_refresh_interval_s)
        return Response(runtime.metrics.render(), media_type=CONTENT_TYPE_LATEST)
