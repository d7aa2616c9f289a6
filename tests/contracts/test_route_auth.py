"""Every route of every service refuses a request without credentials, unless it is public on
purpose.

Routes are enumerated from each app itself (the OpenAPI operations and the routes hidden from it,
such as the customer pages), so a new route is covered the day it is added. Each is called with no
credentials; a JSON API route must answer 401, a page must send the visitor to the sign-in page. The
public list is short and every entry says why; a route must not be added to it to make this test
pass.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator

import httpx
import pytest

from recall_shared.openapi import api_routes

PACKAGES = ["recall_intake", "purchase_matcher", "notifier", "refund_logistics", "customer_api"]

# (method, path): why anyone may call it.
PUBLIC = {
    ("GET", "/healthz"): "liveness probe; says only that the process is up",
    ("GET", "/readyz"): "readiness probe; says only whether the database and Kafka answer",
    ("GET", "/metrics"): "Prometheus scrape; counters without customer or seller data",
    ("GET", "/"): "customer pages: a redirect to /orders, which asks for sign-in",
    (
        "GET",
        "/signin",
    ): "customer pages: the sign-in page itself (takes the identity provider's token)",
    ("GET", "/dev/signin"): "customer pages: development only; 404 in any other environment",
    ("GET", "/assets/pages.css"): "customer pages: the stylesheet",
    (
        "POST",
        "/v1/webhooks/mailgun",
    ): "notifier: Mailgun's delivery events carry no API key but Mailgun's HMAC signature in the "
    "body, checked before anything else (401 without a good one; tested in the notifier)",
    (
        "POST",
        "/v1/webhooks/twilio",
    ): "notifier: Twilio's SMS status callbacks carry no API key but Twilio's X-Twilio-Signature, "
    "checked before anything else (401 without a good one; tested in the notifier)",
    (
        "GET",
        "/public/recalls",
    ): "public recall pages (issue 17): published recalls, no customer data",
    ("GET", "/public/recalls/{recall_id}"): "public recall pages: one published recall",
    ("GET", "/public/recalls.atom"): "public recall pages: the feed of published recalls",
}
# FastAPI's own documentation routes: the OpenAPI document is published in docs/openapi/ anyway.
DOCS = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
PAGE_SIGN_IN = re.compile(r"^/signin\?")


def _routes() -> Iterator[tuple[str, str, str, bool]]:
    for package in PACKAGES:
        app = importlib.import_module(f"{package}.app").create_app()
        for route in api_routes(app):
            for method in sorted(route.methods - {"HEAD"}):
                yield package, method, route.path_format, route.include_in_schema


ROUTES = list(_routes())


def test_the_public_list_names_only_routes_that_exist() -> None:
    existing = {(method, path) for _, method, path, _ in ROUTES}
    assert set(PUBLIC) <= existing, set(PUBLIC) - existing


@pytest.mark.parametrize(
    ("package", "method", "path", "documented"),
    [r for r in ROUTES if (r[1], r[2]) not in PUBLIC and r[2] not in DOCS],
    ids=lambda v: v if isinstance(v, str) else None,
)
async def test_a_route_refuses_a_request_without_credentials(
    package: str, method: str, path: str, documented: bool
) -> None:
    app = importlib.import_module(f"{package}.app").create_app()
    url = re.sub(r"\{[^}]+\}", "probe-1", path)
    body: dict[str, object] | None = (
        {} if method in ("POST", "PUT", "PATCH") and documented else None
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as client:
        r = await client.request(method, url, json=body)
    if documented:
        assert r.status_code == 401, f"{method} {path} answered {r.status_code} without credentials"
        assert r.json()["error"] == "unauthorized"
        assert "www-authenticate" in r.headers
    else:  # a customer page: off to sign in, never anyone's data
        assert r.status_code == 303, f"{method} {path} answered {r.status_code} without a session"
        assert PAGE_SIGN_IN.match(r.headers["location"]), r.headers["location"]


@pytest.mark.parametrize("package", PACKAGES)
def test_the_openapi_document_declares_who_may_call_each_operation(package: str) -> None:
    """Every documented operation names its security scheme; only the public ones have none."""
    doc = importlib.import_module(f"{package}.app").create_app().openapi()
    for path, item in doc["paths"].items():
        for method, op in item.items():
            public = (method.upper(), path) in PUBLIC
            assert bool(op["security"]) != public, f"{method.upper()} {path}: {op['security']}"
            if not public:
                assert "401" in op["responses"], f"{method.upper()} {path} documents no 401"
