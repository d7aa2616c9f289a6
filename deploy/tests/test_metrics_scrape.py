"""Each service's real /metrics, scraped from its app over a migrated database: every family the
dashboard and the alert rules use is there, the gauges read from the database read it (their SQL
runs against the real schema), and ``promtool check metrics`` finds nothing to complain about."""

from __future__ import annotations

import asyncio
import importlib
import logging
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from recall_shared.testing import fast_test_settings, migrated_database

pytestmark = pytest.mark.integration

SHARED = (
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "http_request_duration_seconds_bucket",
    "outbox_oldest_age_seconds",
)
OWN = {
    "recall_intake": (),
    "purchase_matcher": ('alerts_changed_total{change="raised"}',),
    "notifier": (
        'notices{status="waiting_contact"} 1.0',
        'notices_reported{bounce_type="hard",channel="email",delivery="bounced"} 1.0',
        'notices_reported{bounce_type="",channel="email",delivery="unreported"} 1.0',
    ),
    "refund_logistics": (
        'remedy_cases{state="refund_pending"} 1.0',
        'refunds{currency="EUR",status="pending"} 1.0',
        'refunds_amount{currency="EUR",status="pending"} 12.5',
        "refunds_pending_oldest_age_seconds",
    ),
    "customer_api": (),
}
# Rows the services' own gauges should see (only the columns without defaults).
ROWS = {
    "notifier": [
        "INSERT INTO notices (notice_id, alert_id, customer_id, recipient_customer_id, "
        "recipient_role, kind, alert_version, status, attempts) VALUES "
        "('n1', 'a1', 'c1', 'c1', 'purchaser', 'initial', 1, 'waiting_contact', 0)",
        "INSERT INTO notices (notice_id, alert_id, customer_id, recipient_customer_id, "
        "recipient_role, kind, alert_version, status, attempts, delivery, bounce_type) VALUES "
        "('n2', 'a2', 'c2', 'c2', 'purchaser', 'initial', 1, 'sent', 1, 'bounced', 'hard'), "
        "('n3', 'a3', 'c3', 'c3', 'purchaser', 'initial', 1, 'sent', 1, NULL, NULL)",
    ],
    "refund_logistics": [
        "INSERT INTO cases (case_id, request_id, alert_id, customer_id, recall_id, remedy, state, "
        "refunded_amount) VALUES ('k1', 'q1', 'a1', 'c1', 'r1', 'refund', 'refund_pending', 0)",
        "INSERT INTO refunds (refund_id, case_id, line_id, idempotency_key, amount, currency, "
        "status, created_at) VALUES ('f1', 'k1', 'l1', 'i1', 12.50, 'EUR', 'pending', "
        "now() - interval '2 hours')",
    ],
}


def promtool() -> str:
    """promtool from Debian's prometheus package (deploy/deps.sh installs it); missing, the test
    fails rather than skips."""
    found = shutil.which("promtool")
    assert found, "promtool not found: run deploy/deps.sh (Debian package prometheus)"
    return found


@pytest.mark.parametrize("package", sorted(OWN))
async def test_metrics_scrape(package: str, caplog: pytest.LogCaptureFixture) -> None:
    module = importlib.import_module(package)
    migrations = Path(module.__file__ or "").parent / "migrations"
    settings_cls = importlib.import_module(f"{package}.settings").Settings
    create_app = importlib.import_module(f"{package}.app").create_app
    async with migrated_database(migrations, prefix=f"scrape_{package}") as url:
        engine = create_async_engine(url)
        try:
            async with engine.begin() as conn:
                for sql in ROWS.get(package, ()):
                    await conn.execute(text(sql))
        finally:
            await engine.dispose()
        app = create_app(
            settings_cls(**fast_test_settings(database_url=url, metrics_refresh_interval_s=0))
        )
        caplog.set_level(logging.WARNING, logger="recall_shared.metrics")
        try:
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://svc"
            ) as client:
                assert (await client.get("/healthz")).status_code == 200
                scrape = await client.get("/metrics")
        finally:
            await app.state.runtime.engine.dispose()
    assert scrape.status_code == 200
    assert not [r for r in caplog.records if r.name == "recall_shared.metrics"], caplog.text
    body = scrape.text
    for family in (*SHARED, *OWN[package]):
        assert family in body, family
    if package == "refund_logistics":
        age = next(line for line in body.splitlines() if line.startswith("refunds_pending_oldest"))
        assert float(age.split()[-1]) >= 7000
    checked = await asyncio.to_thread(
        subprocess.run,
        [promtool(), "check", "metrics"],
        input=body,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0 and not checked.stdout.strip(), checked.stdout + checked.stderr
