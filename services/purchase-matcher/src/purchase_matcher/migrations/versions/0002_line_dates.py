"""order line dates: manufactured, best before, expiry

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 21:35:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("purchase_lines", sa.Column("manufactured_on", sa.Date(), nullable=True))
    op.add_column("purchase_lines", sa.Column("best_before", sa.Date(), nullable=True))
    op.add_column("purchase_lines", sa.Column("expires_on", sa.Date(), nullable=True))


def downgrade() -> None:
    op.drop_column("purchase_lines", "expires_on")
    op.drop_column("purchase_lines", "best_before")
    op.drop_column("purchase_lines", "manufactured_on")
