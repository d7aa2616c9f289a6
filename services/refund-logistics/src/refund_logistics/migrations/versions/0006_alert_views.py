"""alert_views: a customer's first opening of their alert page (alert.viewed.v1, issue 15), for
the effectiveness report's "viewed"

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 01:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_views",
        sa.Column("alert_id", sa.String(length=36), nullable=False),
        sa.Column("customer_id", sa.String(length=100), nullable=False),
        sa.Column("recall_id", sa.String(length=64), nullable=False),
        sa.Column("viewed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("alert_id", name=op.f("pk_alert_views")),
    )
    op.create_index("ix_alert_views_recall_customer", "alert_views", ["recall_id", "customer_id"])


def downgrade() -> None:
    op.drop_index("ix_alert_views_recall_customer", table_name="alert_views")
    op.drop_table("alert_views")
