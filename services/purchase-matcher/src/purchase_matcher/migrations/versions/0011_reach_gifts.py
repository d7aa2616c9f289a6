"""purchase_lines.is_gift and gift_recipient: the order's gift, carried to alerts (issue 15)

Revision ID: 0011_reach
Revises: 0010
Create Date: 2026-12-01 15:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_reach"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "purchase_lines",
        sa.Column("is_gift", sa.Boolean(), nullable=False, server_default="false"),
    )
    op.add_column("purchase_lines", sa.Column("gift_recipient", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("purchase_lines", "gift_recipient")
    op.drop_column("purchase_lines", "is_gift")
