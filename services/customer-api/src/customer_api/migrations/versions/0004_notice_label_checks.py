"""label_checks: every "am I affected?" answer a customer got for an alert (issue 17)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 15:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "label_checks",
        sa.Column("check_id", sa.String(length=36), nullable=False),
        sa.Column("alert_id", sa.String(length=36), nullable=False),
        sa.Column("customer_id", sa.String(length=100), nullable=False),
        sa.Column("alert_version", sa.Integer(), nullable=False),
        sa.Column("answer", sa.String(length=20), nullable=False),
        sa.Column("lot", sa.String(length=200), nullable=True),
        sa.Column("serial", sa.String(length=200), nullable=True),
        sa.Column("manufactured_on", sa.Date(), nullable=True),
        sa.Column("best_before", sa.Date(), nullable=True),
        sa.Column("expires_on", sa.Date(), nullable=True),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("check_id", name=op.f("pk_label_checks")),
    )
    op.create_index("ix_label_checks_alert_id", "label_checks", ["alert_id", "checked_at"])


def downgrade() -> None:
    op.drop_index("ix_label_checks_alert_id", table_name="label_checks")
    op.drop_table("label_checks")
