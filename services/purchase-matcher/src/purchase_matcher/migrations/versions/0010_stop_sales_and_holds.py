"""catalog_listings, stop_sales, shipment_holds, purchase_lines.awaiting_shipment (issue 16)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 12:30:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

TEXTS = postgresql.ARRAY(sa.Text())


def upgrade() -> None:
    # Lines already indexed count as shipped: nothing tells which were, and holding old orders
    # would stop parcels that left long ago.
    op.add_column(
        "purchase_lines",
        sa.Column("awaiting_shipment", sa.Boolean(), server_default="false", nullable=False),
    )
    for column in ("product_id", "gtin", "model_key"):
        op.create_index(
            f"ix_purchase_lines_unshipped_{column}",
            "purchase_lines",
            [column],
            postgresql_where=sa.text("awaiting_shipment"),
        )
    op.create_table(
        "catalog_listings",
        sa.Column("product_id", sa.String(length=100), nullable=False),
        sa.Column("parent_product_id", sa.String(length=100), nullable=True),
        sa.Column("gtins", TEXTS, nullable=False),
        sa.Column("model_keys", TEXTS, nullable=False),
        sa.Column("seller_ids", TEXTS, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("product_id", name=op.f("pk_catalog_listings")),
    )
    op.create_index("ix_catalog_listings_parent", "catalog_listings", ["parent_product_id"])
    op.create_index(
        "ix_catalog_listings_gtins", "catalog_listings", ["gtins"], postgresql_using="gin"
    )
    op.create_index(
        "ix_catalog_listings_model_keys",
        "catalog_listings",
        ["model_keys"],
        postgresql_using="gin",
    )
    op.create_table(
        "stop_sales",
        sa.Column("recall_id", sa.String(length=64), nullable=False),
        sa.Column("product_id", sa.String(length=100), nullable=False),
        sa.Column("seller_id", sa.String(length=100), nullable=False),
        sa.Column("recall_version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("tier", sa.String(length=20), nullable=False),
        sa.Column("unknown_attributes", TEXTS, nullable=False),
        sa.Column("transitions", sa.Integer(), nullable=False),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("recall_id", "product_id", "seller_id", name=op.f("pk_stop_sales")),
    )
    op.create_index("ix_stop_sales_product_id", "stop_sales", ["product_id"])
    op.create_table(
        "shipment_holds",
        sa.Column("recall_id", sa.String(length=64), nullable=False),
        sa.Column("line_id", sa.String(length=100), nullable=False),
        sa.Column("order_id", sa.String(length=100), nullable=False),
        sa.Column("customer_id", sa.String(length=100), nullable=False),
        sa.Column("recall_version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("tier", sa.String(length=20), nullable=False),
        sa.Column("unknown_attributes", TEXTS, nullable=False),
        sa.Column("transitions", sa.Integer(), nullable=False),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("recall_id", "line_id", name=op.f("pk_shipment_holds")),
    )
    op.create_index("ix_shipment_holds_line_id", "shipment_holds", ["line_id"])


def downgrade() -> None:
    op.drop_table("shipment_holds")
    op.drop_table("stop_sales")
    op.drop_table("catalog_listings")
    for column in ("product_id", "gtin", "model_key"):
        op.drop_index(f"ix_purchase_lines_unshipped_{column}", table_name="purchase_lines")
    op.drop_column("purchase_lines", "awaiting_shipment")
