"""The access log line and request metrics of CorrelationMiddleware (no database or Kafka: the
routes here touch neither)."""

from __future__ import annotations

import logging
from typing import Annotated

import httpx
import pytest
from fastapi import Depends, FastAPI, Request

from recall_shared.auth import CustomerTokenVerifier, issue_customer_token
from recall_shared.http import install_common
from recall_shared.service import ServiceRuntime

SECRET = "test-jwt-secret-" + "j" * 32
VERIFIER = CustomerTokenVerifier(secret=SECRET)


def customer(request: Request) -> str:
    """A plain ``def`` dependency on purpose: FastAPI runs it in a thread, in a copy of the
    request's context, and the principal it notes must still reach the access line."""
    token = request.headers.get("authorization", "").removeprefix("Bearer ")
    return VERIFIER.customer_id(token)


CustomerDep = Annotated[str, Depends(customer)]


def _app(settings_factory) -> tuple[FastAPI, ServiceRuntime]:
    runtime = ServiceRuntime(settings_factory())
    app = FastAPI()
    install_common(app, runtime)

    @app.get("/things/{thing_id}")
    async def thing(thing_id: str, who: CustomerDep) -> dict[str, str]:
        return {"thing": thing_id, "who": who}

    @app.get("/public/{name}")
    async def public(name: str) -> dict[str, str]:
        return {"name": name}

    return app, runtime


def _lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "recall_shared.access"]


async def test_one_access_line_per_request_with_route_template_status_and_principal(
    settings_factory, caplog
) -> None:
    app, runtime = _app(settings_factory)
    token = issue_customer_token("cust-7", SECRET)
    caplog.set_level(logging.INFO, logger="recall_shared.access")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://svc"
    ) as client:
        ok = await client.get(
            "/things/t-1", headers={"authorization": f"Bearer {token}", "x-correlation-id": "c-9"}
        )
        anonymous = await client.get("/public/p-1")
        missing = await client.get("/nowhere")
    assert (ok.status_code, anonymous.status_code, missing.status_code) == (200, 200, 404)
    lines = _lines(caplog)
    assert len(lines) == 3
    first, second, third = lines
    assert first.route == "/things/{thing_id}" and first.status == 200  # type: ignore[attr-defined]
    assert first.principal == "customer" and first.method == "GET"  # type: ignore[attr-defined]
    assert first.duration_ms >= 0  # type: ignore[attr-defined]
    assert second.route == "/public/{name}" and second.principal == "anonymous"  # type: ignore[attr-defined]
    assert third.route == "unmatched" and third.status == 404  # type: ignore[attr-defined]
    # The histogram is labelled by the route template, never the raw path.
    text = runtime.metrics.render().decode()
    assert (
        'http_request_duration_seconds_count{method="GET",route="/things/{thing_id}"} 1.0' in text
    )
    assert "t-1" not in text


async def test_probe_and_scrape_lines_are_debug_only(settings_factory, caplog) -> None:
    app, _ = _app(settings_factory)
    caplog.set_level(logging.INFO, logger="recall_shared.access")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://svc"
    ) as client:
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.get("/metrics")).status_code == 200
    assert _lines(caplog) == []
