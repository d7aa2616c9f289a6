"""remedy reminders until the remedy is complete: one schedule per case

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 12:45:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "case_reminders",
        sa.Column("case_id", sa.String(length=36), nullable=False),
        sa.Column("alert_id", sa.String(length=36), nullable=False),
        sa.Column("customer_id", sa.String(length=100), nullable=False),
        sa.Column("wait", sa.String(length=20), nullable=True),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_no", sa.Integer(), nullable=False),
        sa.Column("next_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stopped_reason", sa.String(length=60), nullable=True),
        sa.Column("queued", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("case_id", name=op.f("pk_case_reminders")),
    )
    op.create_index(
        op.f("ix_case_reminders_alert_id"), "case_reminders", ["alert_id"], unique=False
    )
    op.create_index(
        "ix_case_reminders_due",
        "case_reminders",
        ["next_due_at"],
        unique=False,
        postgresql_where=sa.text("next_due_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_table("case_reminders")
