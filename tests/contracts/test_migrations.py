"""Each service's Alembic migrations, applied to an empty database, produce exactly its models'
schema (and downgrade cleanly), so a model change without a migration fails here."""

from __future__ import annotations

import asyncio
import importlib

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

from recall_shared.migrations import alembic_config
from recall_shared.testing import migrated_database

pytestmark = pytest.mark.integration

PACKAGES = ["recall_intake", "purchase_matcher", "notifier", "refund_logistics", "customer_api"]


@pytest.mark.parametrize("package", PACKAGES)
async def test_migrations_match_the_models(package: str) -> None:
    cli = importlib.import_module(f"{package}.cli")
    metadata = importlib.import_module(f"{package}.models").metadata
    async with migrated_database(cli.MIGRATIONS, "mig") as url:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                diff = await conn.run_sync(
                    lambda sync: compare_metadata(
                        MigrationContext.configure(sync, opts={"compare_type": True}), metadata
                    )
                )
        finally:
            await engine.dispose()
        assert diff == [], f"{package}: models and migrations differ: {diff}"
        await asyncio.to_thread(command.downgrade, alembic_config(cli.MIGRATIONS, url), "base")
