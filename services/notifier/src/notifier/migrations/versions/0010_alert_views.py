"""alert_views: the customer opened the alert page (alert.viewed.v1, issue 15), counted like an
answer by the "not confirmed after N days" fall back

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 01:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_views",
        sa.Column("alert_id", sa.String(length=36), nullable=False),
        sa.Column("customer_id", sa.String(length=100), nullable=False),
        sa.Column("alert_version", sa.Integer(), nullable=False),
        sa.Column("viewed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "alert_id", "customer_id", "alert_version", name=op.f("pk_alert_views")
        ),
    )


def downgrade() -> None:
    op.drop_table("alert_views")
