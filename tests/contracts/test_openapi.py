"""The committed OpenAPI documents in docs/openapi/ are what the services serve."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

EXPORT = Path(__file__).resolve().parents[2] / "docs" / "openapi" / "export.py"
spec = importlib.util.spec_from_file_location("openapi_export", EXPORT)
assert spec and spec.loader
export = importlib.util.module_from_spec(spec)
spec.loader.exec_module(export)


@pytest.mark.parametrize("service", sorted(export.SERVICES))
def test_committed_openapi_matches_the_app(service: str) -> None:
    committed = json.loads((EXPORT.parent / f"{service}.json").read_text())
    assert committed == json.loads(export.dump(export.openapi_of(export.SERVICES[service]))), (
        f"docs/openapi/{service}.json is stale: run `make docs`"
    )


@pytest.mark.parametrize("service", sorted(export.SERVICES))
def test_every_service_documents_health_and_readiness(service: str) -> None:
    paths = json.loads((EXPORT.parent / f"{service}.json").read_text())["paths"]
    assert "/healthz" in paths and "/readyz" in paths
