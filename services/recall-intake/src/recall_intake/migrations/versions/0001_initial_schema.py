"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-25 20:55:12.483353
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from recall_shared.migrations import create_messaging_tables, drop_messaging_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_messaging_tables()
    op.create_table(
        "listings",
        sa.Column("product_id", sa.String(length=100), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("seller_ids", postgresql.ARRAY(sa.String(length=100)), nullable=False),
        sa.Column("gtins", postgresql.ARRAY(sa.String(length=14)), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("product_id", name=op.f("pk_listings")),
    )
    op.create_table(
        "recalls",
        sa.Column("recall_id", sa.String(length=36), nullable=False),
        sa.Column("seller_id", sa.String(length=100), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("content", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("rules", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("logistics_enrolled", sa.Boolean(), nullable=False),
        sa.Column("owner_key", sa.String(length=120), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=True),
        sa.Column("request_fingerprint", sa.String(length=64), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("recall_id", name=op.f("pk_recalls")),
    )
    op.create_index("ix_recalls_created", "recalls", ["created_at", "recall_id"], unique=False)
    op.create_index(op.f("ix_recalls_seller_id"), "recalls", ["seller_id"], unique=False)
    op.create_index(
        "uq_recalls_owner_idempotency_key",
        "recalls",
        ["owner_key", "idempotency_key"],
        unique=True,
        postgresql_where=sa.text("idempotency_key IS NOT NULL"),
    )
    op.create_table(
        "sellers",
        sa.Column("seller_id", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("seller_id", name=op.f("pk_sellers")),
    )
    op.create_table(
        "api_keys",
        sa.Column("key_id", sa.String(length=36), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("display_prefix", sa.String(length=20), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("seller_id", sa.String(length=100), nullable=True),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["seller_id"], ["sellers.seller_id"], name=op.f("fk_api_keys_seller_id_sellers")
        ),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    op.create_table(
        "recall_versions",
        sa.Column("recall_id", sa.String(length=36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("event_type", sa.String(length=60), nullable=False),
        sa.Column("snapshot", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["recall_id"], ["recalls.recall_id"], name=op.f("fk_recall_versions_recall_id_recalls")
        ),
        sa.PrimaryKeyConstraint("recall_id", "version", name=op.f("pk_recall_versions")),
    )


def downgrade() -> None:
    op.drop_table("recall_versions")
    op.drop_table("api_keys")
    op.drop_table("sellers")
    op.drop_index(
        "uq_recalls_owner_idempotency_key",
        table_name="recalls",
        postgresql_where=sa.text("idempotency_key IS NOT NULL"),
    )
    op.drop_index(op.f("ix_recalls_seller_id"), table_name="recalls")
    op.drop_index("ix_recalls_created", table_name="recalls")
    op.drop_table("recalls")
    op.drop_table("listings")
    drop_messaging_tables()
