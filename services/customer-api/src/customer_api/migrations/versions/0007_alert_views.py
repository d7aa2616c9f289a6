"""alert_views: the customer's first view of each version of their alert page, for the
notifier's "not opened after N days" fall back (alert.viewed.v1)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 01:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_views",
        sa.Column("alert_id", sa.String(length=36), nullable=False),
        sa.Column("alert_version", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.String(length=100), nullable=False),
        sa.Column("viewed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("alert_id", "alert_version", name=op.f("pk_alert_views")),
    )


def downgrade() -> None:
    op.drop_table("alert_views")
