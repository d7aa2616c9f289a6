"""The committed OpenAPI documents pass redocly's recommended rules with no error
(docs/openapi/redocly.yaml).

redocly is pinned in docs/openapi/package.json (package-lock.json); ``make install`` runs ``npm ci``
there, and this test does too when it was not run. Skipped only where Node.js is missing or older
than ``NODE_MIN``, redocly's own requirement (Debian 12 ships 18).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

OPENAPI = Path(__file__).resolve().parents[2] / "docs" / "openapi"
REDOCLY = OPENAPI / "node_modules" / ".bin" / "redocly"
DOCUMENTS = sorted(p.name for p in OPENAPI.glob("*.json") if not p.name.startswith("package"))
QUIET = {**os.environ, "REDOCLY_TELEMETRY": "off", "REDOCLY_SUPPRESS_UPDATE_NOTICE": "true"}
NODE_MIN = (20, 19)  # @redocly/cli's "engines" in package-lock.json


def _node_version() -> tuple[int, ...]:
    out = subprocess.run(["node", "--version"], capture_output=True, text=True, check=True)
    return tuple(int(part) for part in out.stdout.strip().lstrip("v").split(".")[:2])


@pytest.fixture(scope="module")
def redocly() -> Path:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("Node.js is not installed")
    if _node_version() < NODE_MIN:
        pytest.skip(f"Node.js {'.'.join(map(str, NODE_MIN))} or later is needed (redocly)")
    if not REDOCLY.exists():
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"],
            cwd=OPENAPI,
            check=True,
            env=QUIET,
            timeout=300,
        )
    return REDOCLY


def test_every_document_is_linted() -> None:
    assert len(DOCUMENTS) == 5, DOCUMENTS


@pytest.mark.parametrize("document", DOCUMENTS)
def test_redocly_recommended_rules_find_no_error(redocly: Path, document: str) -> None:
    done = subprocess.run(
        [str(redocly), "lint", "--config", "redocly.yaml", "--format", "stylish", document],
        cwd=OPENAPI,
        capture_output=True,
        text=True,
        env=QUIET,
        timeout=120,
    )
    assert done.returncode == 0, f"{document}:\n{done.stdout}\n{done.stderr}"
