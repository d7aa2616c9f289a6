"""recalls.withdrawn, recalls.close_reason: a recall closed because it was withdrawn, and why
(issue 17)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 15:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "recalls", sa.Column("withdrawn", sa.Boolean(), server_default="false", nullable=False)
    )
    op.add_column(
        "recalls", sa.Column("close_reason", sa.Text(), server_default="", nullable=False)
    )


def downgrade() -> None:
    op.drop_column("recalls", "close_reason")
    op.drop_column("recalls", "withdrawn")
