"""The OpenAPI document as the code answers: every error status with the real error body, the
security of each operation, the license.

Statuses come from three places, so none is forgotten:

- each route's own ``responses`` (``error_responses(404, 409)``): what its code raises;
- its dependencies: an authentication dependency marked ``@raises(401)`` documents 401 on every
  route that uses it (and ``@raises(401, 403)`` for an operator-only one);
- what the shared middleware answers anywhere: 422 (unsafe text in the path or query, bad
  parameters), 413 for a body too large, 429 on a rate-limited write, 500 for an unexpected error.

Every 4xx/5xx is documented with the shared ``Error`` schema (recall_shared.http_errors.ErrorBody).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from fastapi import FastAPI, routing
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi

from recall_shared.http_errors import ErrorBody
from recall_shared.rate_limit import WRITE_METHODS

F = TypeVar("F")

LICENSE = {"name": "Apache-2.0", "identifier": "Apache-2.0"}
ERROR_REF = {"$ref": "#/components/schemas/Error"}
DESCRIPTIONS = {
    400: "Bad request",
    401: "Missing, unknown, expired or revoked credentials",
    403: "The credentials do not allow this",
    404: "No such resource, or not one the caller may see",
    409: "The resource is not in a state that allows this",
    413: "The request body is too large",
    415: "Unsupported content type",
    422: "Invalid input: the message names the field",
    429: "Too many write requests for this credential; see Retry-After",
    500: "Unexpected error",
}


# docs/decisions/0008: what a read model has not learnt yet is a 409 to retry, not a final refusal.
NOT_KNOWN_YET = {
    "description": "`not_known_yet`: something the request names has not reached this service "
    "yet; send the same request again after Retry-After",
    "headers": {
        "Retry-After": {
            "description": "Seconds to wait before retrying",
            "schema": {"type": "integer"},
        }
    },
}


def raises(*statuses: int) -> Callable[[F], F]:
    """Marks a dependency with the error statuses it answers, for every route that depends on it."""

    def mark(dependency: F) -> F:
        dependency.__openapi_errors__ = statuses  # type: ignore[attr-defined]
        return dependency

    return mark


def error_responses(
    *statuses: int, also: dict[int | str, dict[str, Any]] | None = None
) -> dict[int | str, dict[str, Any]]:
    """A route's ``responses=`` for the errors its own code raises (the body schema is added for
    it), after the route's other documented responses ``also`` (``{304: {...}}``, say)."""
    errors: dict[int | str, dict[str, Any]] = {
        s: {"description": DESCRIPTIONS.get(s, "Error")} for s in statuses
    }
    return (also or {}) | errors


def _dependency_errors(dependant: Dependant) -> Iterator[int]:
    for dep in dependant.dependencies:
        yield from getattr(dep.call, "__openapi_errors__", ())
        yield from _dependency_errors(dep)


def _error_content() -> dict[str, Any]:
    return {"application/json": {"schema": ERROR_REF}}


def _is_default_content(content: dict[str, Any] | None) -> bool:
    """No content, or what FastAPI puts there (an empty schema, its own validation error)."""
    if not content:
        return True
    schema = content.get("application/json", {}).get("schema")
    return len(content) == 1 and schema in (
        {},
        None,
        {"$ref": "#/components/schemas/HTTPValidationError"},
    )


def _document_operation(route: Any, method: str, op: dict[str, Any]) -> None:
    responses = op.setdefault("responses", {})
    # 400: a request HTTP itself refuses (a malformed header, say), answered before any route.
    statuses = set(_dependency_errors(route.dependant)) | {400, 422, 500}
    if "requestBody" in op:
        statuses.add(413)
    if method.upper() in WRITE_METHODS and op.get("security"):
        statuses.add(429)
    for status in statuses:
        responses.setdefault(str(status), {"description": DESCRIPTIONS.get(status, "Error")})
    for code, response in responses.items():
        if code[0] in "45" and _is_default_content(response.get("content")):
            response["content"] = _error_content()
            if code == "422":
                response["description"] = DESCRIPTIONS[422]
            if code == "429":
                response["headers"] = {
                    "Retry-After": {
                        "description": "Seconds to wait before retrying",
                        "schema": {"type": "integer"},
                    }
                }
    if "security" not in op:
        op["security"] = []  # public on purpose (tests/contracts/test_route_auth.py keeps the list)
    op["responses"] = dict(sorted(responses.items()))


def api_routes(app: FastAPI) -> Iterator[Any]:
    """Every API route of the app, included routers flattened (FastAPI's route contexts, which
    answer as an APIRoute does: path_format, methods, dependant, include_in_schema)."""
    for context in routing.iter_route_contexts(app.routes):
        if isinstance(context.original_route, routing.APIRoute):
            yield context


# String formats of this project's own: each is a rule JSON Schema cannot state, checked by the
# code; the document's description defines those it uses (and test_schemathesis.py generates them).
GTIN_FORMAT = "gtin"
IMAGE_BASE64_FORMAT = "image-base64"
CUSTOM_FORMATS = {
    GTIN_FORMAT: "a GTIN-8, UPC-A (12 digits), EAN-13 or GTIN-14 whose GS1 check digit verifies, "
    "or a UPC-A or EAN-8 without its check digit (11 or 7 digits: it is added, with a warning); "
    "spaces, hyphens, dots and slashes between digits are ignored. Otherwise 422 naming the item",
    IMAGE_BASE64_FORMAT: "base64 of an image of a type the operation takes as a raw body, "
    "recognised by its signature, not by a declared type. Otherwise 422",
}


def _formats_rule(doc: dict[str, Any]) -> str:
    text = json.dumps(doc)
    used = [name for name in CUSTOM_FORMATS if f'"format": "{name}"' in text]
    return "".join(f"\n\nFormat `{name}`: {CUSTOM_FORMATS[name]}." for name in used)


TEXT_RULE = (
    "Every string (path, query, body, form) must be text PostgreSQL can store: no NUL character "
    "(U+0000) and no lone surrogate; every integer fits 64 bits. Otherwise the answer is a 422 "
    "naming the field (`error: validation_failed`)."
)


def build_openapi(app: FastAPI) -> dict[str, Any]:
    doc = get_openapi(
        title=app.title,
        version=app.version,
        openapi_version=app.openapi_version,
        description=(app.description + "\n\n" if app.description else "") + TEXT_RULE,
        routes=app.routes,
        license_info=LICENSE,
        # Relative: the service answers wherever this document is served from.
        servers=[{"url": "/", "description": "This service"}],
    )
    for route in api_routes(app):
        if not route.include_in_schema:
            continue
        item = doc["paths"].get(route.path_format, {})
        for method in route.methods:
            if method.lower() in item:
                _document_operation(route, method, item[method.lower()])
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    doc["info"]["description"] += _formats_rule(doc)
    schemas["Error"] = ErrorBody.model_json_schema()
    schemas.pop("HTTPValidationError", None)
    if "#/components/schemas/ValidationError" not in json.dumps(doc):
        schemas.pop("ValidationError", None)
    return doc


def install_openapi(app: FastAPI) -> None:
    """``app.openapi()`` (and /openapi.json) gives :func:`build_openapi`, built once."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
