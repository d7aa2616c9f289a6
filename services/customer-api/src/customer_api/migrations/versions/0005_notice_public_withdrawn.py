"""public_recalls.close_reason: why a recall was closed or withdrawn (status 'withdrawn', issue 17)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 15:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "public_recalls",
        sa.Column("close_reason", sa.Text(), server_default="", nullable=False),
    )


def downgrade() -> None:
    op.drop_column("public_recalls", "close_reason")
