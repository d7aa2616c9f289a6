"""The reliability tests' system: the five services as processes on a private PostgreSQL, Kafka
broker and SMTP sink (see private_infra.py), started once for the directory, stopped after it."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # private_infra, system (beside this file)

from devstack import SERVICES, Stack
from private_infra import (
    REPO,
    PrivateKafka,
    PrivatePostgres,
    PrivateSmtp,
    keep_logs,
)
from system import System

PORT_BASE = 19000  # e2e uses 18000, make run 8000
JWT_SECRET = "reliability-" + "s" * 40
MAX_ATTEMPTS = 3


def _service_settings(prefix: str) -> dict[str, str]:
    """Per-service settings: quick enough for a CI budget, same behaviour as production."""
    return {
        # The pause between retries while infrastructure is down is capped at 3 s, not 30 s, so a
        # partition resumes within seconds of PostgreSQL or Kafka coming back.
        f"{prefix}CONSUMER_WAIT_MAX_S": "3",
        f"{prefix}CONSUMER_BACKOFF_MAX_S": "0.5",
        f"{prefix}CONSUMER_MAX_ATTEMPTS": str(MAX_ATTEMPTS),
        f"{prefix}DEAD_LETTER_SCAN_INTERVAL_S": "2",
    }


@pytest.fixture(scope="session")
def system() -> Iterator[System]:
    """Session-scoped: only the reliability tests ask for it, and starting it costs ~30 s."""
    run_id = uuid.uuid4().hex[:8]
    artifacts = REPO / "test-artifacts" / f"reliability-{run_id}"
    # Not under pytest's tmp_path: as root the server runs as `postgres`, which cannot enter
    # /tmp/pytest-of-root (0700).
    root = Path(tempfile.mkdtemp(prefix=f"recall-reliability-{run_id}-"))
    os.chmod(root, 0o755)
    postgres, kafka, smtp = PrivatePostgres(root), PrivateKafka(root), PrivateSmtp(root)
    stack: Stack | None = None
    try:
        postgres.init()
        postgres.start()
        databases = {svc.name: svc.db_name for svc in SERVICES}
        asyncio.run(postgres.create_databases(list(databases.values())))
        kafka.init()
        kafka.start()
        smtp.start()
        env = {
            **os.environ,
            "RECALL_ALERTS_ENV": "test",
            "RECALL_ALERTS_TOPIC_PREFIX": f"rel-{run_id}.",
            "RECALL_ALERTS_JWT_SECRET": JWT_SECRET,
            "RECALL_ALERTS_API_KEY_PEPPER": "reliability-pepper-" + "p" * 32,
            "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap,
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(smtp.port),
            "NOTIFIER_SMTP_PORT": str(smtp.port),
            "NOTIFIER_CUSTOMER_PORTAL_URL": f"http://127.0.0.1:{PORT_BASE + 5}",
            "NOTIFIER_SENDER_POLL_S": "0.5",
            # A notice whose outcome could not be recorded (the database went down after the SMTP
            # transaction) is retried when its lease ends: 10 s here, 300 s by default.
            "NOTIFIER_SEND_LEASE_S": "10",
        }
        for svc in SERVICES:
            env[f"{svc.env_prefix}DATABASE_URL"] = postgres.url(databases[svc.name])
            env.update(_service_settings(svc.env_prefix))
        stack = Stack(
            env=env,
            ports={svc.name: PORT_BASE + i + 1 for i, svc in enumerate(SERVICES)},
            log_dir=artifacts,
        )
        stack.prepare()
        seller = f"seller-{run_id}"
        stack.run_cli(SERVICES[0], "register-seller", seller)
        seller_key = stack.run_cli(
            SERVICES[0], "issue-api-key", "--seller-id", seller, "--label", "rel", capture=True
        ).splitlines()[-1]
        stack.start()
        yield System(
            stack=stack,
            postgres=postgres,
            kafka=kafka,
            smtp=smtp,
            databases=databases,
            seller_id=seller,
            seller_key=seller_key,
            max_attempts=MAX_ATTEMPTS,
        )
    finally:
        if stack is not None:
            stack.stop()
        smtp.stop()
        kafka.stop()
        postgres.stop_if_running()
        keep_logs(root, artifacts)
        shutil.rmtree(root, ignore_errors=True)
