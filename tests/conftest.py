"""Fixtures for the cross-service tests: an isolated copy of the whole system, as separate
processes."""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from recall_shared.testing import create_database, delete_topics, drop_database, kafka_bootstrap
from recall_shared.trace_sink import TraceSink

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "deploy"))

from devstack import SERVICES, Stack  # noqa: E402

E2E_PORT_BASE = 18000
JWT_SECRET = "e2e-" + "s" * 40


@pytest.fixture(scope="module")
def trace_sink() -> Iterator[TraceSink]:
    """An OTLP receiver the module's stack exports its spans to (a module that sets
    ``COLLECT_TRACES = True``; the others run with tracing off)."""
    sink = TraceSink().start()
    try:
        yield sink
    finally:
        sink.stop()


@pytest.fixture(scope="module")
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """All five services on ports 18001-18005, with fresh databases and a unique topic prefix, so a
    test run never sees another run's (or the demo's) data on the shared broker and server."""
    run_id = uuid.uuid4().hex[:8]
    db_names = {svc.name: f"e2e_{run_id}_{svc.package}" for svc in SERVICES}
    urls = {name: asyncio.run(create_database(db)) for name, db in db_names.items()}
    env = {
        **__import__("os").environ,
        "RECALL_ALERTS_ENV": "test",
        "RECALL_ALERTS_TOPIC_PREFIX": f"e2e-{run_id}.",
        "RECALL_ALERTS_JWT_SECRET": JWT_SECRET,
        "RECALL_ALERTS_API_KEY_PEPPER": "e2e-pepper-" + "p" * 32,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap(),
        "NOTIFIER_CUSTOMER_PORTAL_URL": f"http://127.0.0.1:{E2E_PORT_BASE + 5}",
        "NOTIFIER_SENDER_POLL_S": "0.5",
        # customer-api forwards the page's proof upload to refund-logistics (on the stack's port).
        "CUSTOMER_API_REFUND_LOGISTICS_URL": f"http://127.0.0.1:{E2E_PORT_BASE + 4}",
    }
    for svc in SERVICES:
        env[f"{svc.env_prefix}DATABASE_URL"] = urls[svc.name]
    if getattr(request.module, "COLLECT_TRACES", False):
        sink: TraceSink = request.getfixturevalue("trace_sink")
        env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = sink.endpoint
        env["OTEL_BSP_SCHEDULE_DELAY"] = "200"  # export every 0.2 s, not 5 s
    log_dir = ROOT / "test-artifacts" / f"e2e-{run_id}"
    s = Stack(
        env=env,
        ports={svc.name: E2E_PORT_BASE + i + 1 for i, svc in enumerate(SERVICES)},
        log_dir=log_dir,
    )
    s.prepare()
    s.start()
    try:
        yield s
    finally:
        s.stop()
        for db in db_names.values():
            asyncio.run(drop_database(db))
        asyncio.run(delete_topics(f"e2e-{run_id}."))  # or the local broker slows down run after run
