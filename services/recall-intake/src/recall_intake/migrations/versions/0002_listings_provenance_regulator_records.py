"""listings models and parents, import provenance, regulator records

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 21:23:49.601463
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "regulator_records",
        sa.Column("agency", sa.String(length=40), nullable=False),
        sa.Column("reference", sa.String(length=200), nullable=False),
        sa.Column("recall_id", sa.String(length=36), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("times_seen", sa.Integer(), nullable=False),
        sa.Column(
            "first_seen_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "last_seen_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["recall_id"],
            ["recalls.recall_id"],
            name=op.f("fk_regulator_records_recall_id_recalls"),
        ),
        sa.PrimaryKeyConstraint("agency", "reference", name=op.f("pk_regulator_records")),
    )
    op.create_index(
        op.f("ix_regulator_records_recall_id"), "regulator_records", ["recall_id"], unique=False
    )
    op.add_column(
        "listings",
        sa.Column(
            "model_keys",
            postgresql.ARRAY(sa.String(length=200)),
            nullable=False,
            server_default=sa.text("'{}'"),
        ),
    )
    op.add_column("listings", sa.Column("parent_product_id", sa.String(length=100), nullable=True))
    op.create_index(
        op.f("ix_listings_parent_product_id"), "listings", ["parent_product_id"], unique=False
    )
    op.add_column(
        "recalls", sa.Column("source", sa.String(length=20), nullable=False, server_default="api")
    )
    op.add_column(
        "recalls", sa.Column("provenance", postgresql.JSONB(astext_type=sa.Text()), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("recalls", "provenance")
    op.drop_column("recalls", "source")
    op.drop_index(op.f("ix_listings_parent_product_id"), table_name="listings")
    op.drop_column("listings", "parent_product_id")
    op.drop_column("listings", "model_keys")
    op.drop_index(op.f("ix_regulator_records_recall_id"), table_name="regulator_records")
    op.drop_table("regulator_records")
