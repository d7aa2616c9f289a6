"""seller_keys: the sellers.v1 read model (API key hashes) that authenticates the read API

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26 01:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Filled by the sellers.v1 consumer (group suffix ".sellers"), which starts at the topic's beginning:
    # every key recall-intake has issued works here once the consumer has caught up.
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


def downgrade() -> None:
    op.drop_table("seller_keys")
