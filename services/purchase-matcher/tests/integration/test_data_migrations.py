"""Migrations that move data: rows written by an older schema read right after upgrading."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import orjson
import pytest

import purchase_matcher
from recall_shared.migrations import upgrade
from recall_shared.testing import create_database, drop_database, unique_name

pytestmark = pytest.mark.integration
MIGRATIONS = Path(purchase_matcher.__file__).parent / "migrations"


async def test_alert_states_become_counts_and_active_recalls_get_their_identifiers() -> None:
    name = unique_name("matcher_data_migration")
    url = await create_database(name)
    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    try:
        await asyncio.to_thread(upgrade, MIGRATIONS, url, "0005")
        conn = await asyncpg.connect(dsn)
        try:
            state = {"lines": [{"line_id": "l1", "units": 2}, {"line_id": "l2", "units": 3}]}
            await conn.execute(
                "INSERT INTO alerts (alert_id, customer_id, recall_id, recall_version, "
                "alert_version, status, tier, fingerprint, state) "
                "VALUES ('a1', 'c1', 'r1', 1, 1, 'open', 'confirmed', 'f', $1::jsonb)",
                orjson.dumps(state).decode(),
            )
            snapshot = {
                "rules": [
                    {
                        "product_ids": ["p1"],
                        "gtins": ["00011110911285"],
                        "model_numbers": ["HX-200/B", ""],
                    },
                    {"product_ids": ["p1", "p2"]},
                ]
            }
            for rid, status in (("r1", "active"), ("r2", "closed")):
                await conn.execute(
                    "INSERT INTO recalls (recall_id, version, status, snapshot, published_at) "
                    "VALUES ($1, 1, $2, $3::jsonb, now())",
                    rid,
                    status,
                    orjson.dumps(snapshot).decode(),
                )
        finally:
            await conn.close()
        await asyncio.to_thread(upgrade, MIGRATIONS, url, "head")
        conn = await asyncpg.connect(dsn)
        try:
            row = await conn.fetchrow(
                "SELECT line_count, units, alert_id FROM alerts WHERE recall_id = 'r1' AND "
                "customer_id = 'c1'"
            )
            assert (row["line_count"], row["units"], row["alert_id"]) == (2, 5, "a1")
            ids = {
                tuple(r)
                for r in await conn.fetch("SELECT kind, value, recall_id FROM recall_identifiers")
            }
            assert ids == {
                ("product", "p1", "r1"),
                ("product", "p2", "r1"),
                ("gtin", "00011110911285", "r1"),
                ("model", "HX200B", "r1"),
            }  # the closed recall is not indexed
        finally:
            await conn.close()
    finally:
        await drop_database(name)
