"""seller_keys: the sellers.v1 read model (API key hashes) that authenticates the read API

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26 01:00:00
"""

from alembic import op

from recall_shared.migrations import create_seller_keys_table

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Filled by the sellers.v1 consumer (group suffix ".sellers"), which starts at the topic's
    # beginning: every key recall-intake has issued works here once the consumer has caught up.
    create_seller_keys_table()


def downgrade() -> None:
    op.drop_table("seller_keys")
