"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-25 20:57:06.965065
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
        "alerts",
        sa.Column("alert_id", sa.String(length=36), nullable=False),
        sa.Column("customer_id", sa.String(length=100), nullable=False),
        sa.Column("recall_id", sa.String(length=64), nullable=False),
        sa.Column("recall_version", sa.Integer(), nullable=False),
        sa.Column("alert_version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("tier", sa.String(length=20), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("state", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("alert_id", name=op.f("pk_alerts")),
        sa.UniqueConstraint(
            "customer_id", "recall_id", name=op.f("uq_alerts_customer_id_recall_id")
        ),
    )
    op.create_index(op.f("ix_alerts_recall_id"), "alerts", ["recall_id"], unique=False)
    op.create_table(
        "purchase_lines",
        sa.Column("line_id", sa.String(length=100), nullable=False),
        sa.Column("order_id", sa.String(length=100), nullable=False),
        sa.Column("customer_id", sa.String(length=100), nullable=False),
        sa.Column("product_id", sa.String(length=100), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("gtin", sa.String(length=14), nullable=True),
        sa.Column("model_number", sa.String(length=200), nullable=True),
        sa.Column("model_key", sa.String(length=200), nullable=True),
        sa.Column("seller_id", sa.String(length=100), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("returned_quantity", sa.Integer(), nullable=False),
        sa.Column("cancelled", sa.Boolean(), nullable=False),
        sa.Column("unit_price", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("lot", sa.String(length=200), nullable=True),
        sa.Column("serial", sa.String(length=200), nullable=True),
        sa.Column("placed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("business_account_admin_id", sa.String(length=100), nullable=True),
        sa.PrimaryKeyConstraint("line_id", name=op.f("pk_purchase_lines")),
    )
    op.create_index("ix_purchase_lines_customer", "purchase_lines", ["customer_id"], unique=False)
    op.create_index("ix_purchase_lines_gtin", "purchase_lines", ["gtin"], unique=False)
    op.create_index("ix_purchase_lines_model_key", "purchase_lines", ["model_key"], unique=False)
    op.create_index("ix_purchase_lines_product", "purchase_lines", ["product_id"], unique=False)
    op.create_table(
        "recalls",
        sa.Column("recall_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("snapshot", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("recall_id", name=op.f("pk_recalls")),
    )


def downgrade() -> None:
    op.drop_table("recalls")
    op.drop_index("ix_purchase_lines_product", table_name="purchase_lines")
    op.drop_index("ix_purchase_lines_model_key", table_name="purchase_lines")
    op.drop_index("ix_purchase_lines_gtin", table_name="purchase_lines")
    op.drop_index("ix_purchase_lines_customer", table_name="purchase_lines")
    op.drop_table("purchase_lines")
    op.drop_index(op.f("ix_alerts_recall_id"), table_name="alerts")
    op.drop_table("alerts")
    drop_messaging_tables()
