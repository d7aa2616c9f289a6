"""alerts: the reconcile pass that last confirmed each alert

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 22:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("alerts", sa.Column("reconcile_pass", sa.String(length=36), nullable=True))


def downgrade() -> None:
    op.drop_column("alerts", "reconcile_pass")
