"""Alembic, shared: each service's ``migrations/env.py`` calls :func:`run_env` with its metadata."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, pool, text
from sqlalchemy.ext.asyncio import create_async_engine

from recall_shared.db import connect_url

MIGRATION_LOCK = text(
    "SELECT pg_advisory_xact_lock(hashtextextended('recall_alerts.migrations', 0))"
)


def run_env(metadata: MetaData) -> None:
    url = context.config.get_main_option("sqlalchemy.url")
    if url is None:  # alembic_config() always sets it; a hand-made config might not
        raise RuntimeError("alembic config has no sqlalchemy.url")
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=metadata, literal_binds=True, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()
        return

    def migrate(connection) -> None:
        context.configure(connection=connection, target_metadata=metadata, compare_type=True)
        with context.begin_transaction():
            # Instances started with `serve --migrate`, or a Job beside them, may migrate at once:
            # one at a time, and the next reads the version the previous one committed (nothing to
            # do). The lock is the transaction's: released by the commit, or by a crash.
            connection.execute(MIGRATION_LOCK)
            context.run_migrations()

    async def online() -> None:
        engine = create_async_engine(connect_url(url), poolclass=pool.NullPool)
        async with engine.connect() as conn:
            await conn.run_sync(migrate)
            await conn.commit()
        await engine.dispose()

    asyncio.run(online())


def alembic_config(migrations_dir: Path, database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


def upgrade(migrations_dir: Path, database_url: str, revision: str = "head") -> None:
    """Migrate to ``revision``. Synchronous (Alembic runs its own loop): call via asyncio.to_thread
    from async code."""
    command.upgrade(alembic_config(migrations_dir, database_url), revision)


def make_revision(migrations_dir: Path, database_url: str, message: str) -> None:
    """Autogenerate a revision from the models against a database at head (developers only)."""
    command.revision(
        alembic_config(migrations_dir, database_url), message=message, autogenerate=True
    )


def create_messaging_tables() -> None:
    """The outbox and inbox every service has (recall_shared.db.new_metadata), for its first
    migration."""
    import sqlalchemy as sa
    from alembic import op
    from sqlalchemy.dialects import postgresql

    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("topic", sa.String(length=255), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("event_type", sa.String(length=255), nullable=False),
        sa.Column("headers", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("event_id", name=op.f("uq_outbox_event_id")),
    )
    op.create_table(
        "inbox",
        sa.Column("consumer_group", sa.String(length=255), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column(
            "processed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("consumer_group", "event_id", name=op.f("pk_inbox")),
    )
    op.create_index("ix_inbox_processed_at", "inbox", ["processed_at"], unique=False)


def drop_messaging_tables() -> None:
    from alembic import op

    op.drop_index("ix_inbox_processed_at", table_name="inbox")
    op.drop_table("inbox")
    op.drop_table("outbox")


def create_seller_keys_table() -> None:
    """The ``seller_keys`` read model of sellers.v1 (recall_shared.api_keys.SellerKeyColumns), for
    the migration of a service that authenticates sellers and operators."""
    import sqlalchemy as sa
    from alembic import op

    op.create_table(
        "seller_keys",
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("key_hash", sa.String(length=128), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("seller_id", sa.String(length=100), nullable=True),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_seller_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_seller_keys_key_hash")),
    )
