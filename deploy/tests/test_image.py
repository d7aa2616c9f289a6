"""The service image (Containerfile): built here from a Debian base without any registry, it runs a
service by its command, as a non-root user, against the local Kafka and PostgreSQL.

Cost: the first build on a machine makes the base with debootstrap (35 s to 3 min) and installs the
locked dependencies (about 2 min); later builds reuse the base (.cache/image/) and podman's layers
(10-15 s after a source change)."""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from recall_shared.testing import create_database, delete_topics, drop_database, kafka_bootstrap

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from containers import IMAGE, build_image, env_args, podman, run_once

pytestmark = pytest.mark.integration

PORT = 18151  # not one of the services' fixed ports: no lock needed


@pytest.fixture(scope="module")
def image() -> str:
    build_image()
    return IMAGE


@pytest.fixture
def intake_env() -> Iterator[dict[str, str]]:
    run = uuid.uuid4().hex[:8]
    db = f"image_{run}_recall_intake"
    url = asyncio.run(create_database(db))
    prefix = f"image-{run}."
    try:
        yield {
            "RECALL_ALERTS_ENV": "test",
            "RECALL_ALERTS_JWT_SECRET": "image-test-" + "j" * 32,
            "RECALL_ALERTS_API_KEY_PEPPER": "image-test-" + "p" * 32,
            "RECALL_ALERTS_TOPIC_PREFIX": prefix,
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap(),
            "RECALL_INTAKE_DATABASE_URL": url,
            "RECALL_INTAKE_HTTP_PORT": str(PORT),
        }
    finally:
        asyncio.run(drop_database(db))
        asyncio.run(delete_topics(prefix))


def test_the_image_runs_a_service_as_a_non_root_user(image: str) -> None:
    assert run_once(["id", "-u"], {}).strip() == "10001"
    assert "serve" in run_once(["notifier", "--help"], {})


def test_a_service_from_the_image_becomes_ready(image: str, intake_env: dict[str, str]) -> None:
    run_once(["recall-intake", "migrate"], intake_env)
    assert "created" in run_once(["recall-intake", "create-topics"], intake_env)
    name = f"recall-alerts-image-test-{uuid.uuid4().hex[:8]}"
    podman(
        *("run", "--detach", "--name", name, "--network", "host"),
        *env_args(intake_env),
        *(image, "recall-intake", "serve"),
    )
    try:
        deadline, last = time.monotonic() + 60, ""
        while time.monotonic() < deadline:
            try:
                r = httpx.get(f"http://127.0.0.1:{PORT}/readyz", timeout=2)
                if r.status_code == 200:
                    break
                last = r.text
            except httpx.HTTPError as exc:
                last = repr(exc)
            time.sleep(0.5)
        else:
            logs = podman("logs", name, check=False)
            pytest.fail(f"not ready in 60 s: {last}\n{logs.stdout[-2000:]}{logs.stderr[-2000:]}")
        assert r.json()["ready"] is True
    finally:
        podman("rm", "--force", "--time", "10", name, check=False)
