"""sending state and reminders

Notices get a 'sending' state recorded before the SMTP transaction (with ``sending_at``), a counter
of re-sends after an interrupted attempt, and a reminder number in their unique key; the reminder
schedule and the customers' responses get their own tables.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 10:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "notices", sa.Column("reminder_no", sa.Integer(), server_default="0", nullable=False)
    )
    op.add_column("notices", sa.Column("sending_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "notices", sa.Column("resent_in_doubt", sa.Integer(), server_default="0", nullable=False)
    )
    op.drop_constraint(
        "uq_notices_alert_id_kind_alert_version_recipient_customer_id", "notices", type_="unique"
    )
    op.create_unique_constraint(
        op.f("uq_notices_alert_kind_version_recipient_reminder"),
        "notices",
        ["alert_id", "kind", "alert_version", "recipient_customer_id", "reminder_no"],
    )
    op.drop_index(
        "ix_notices_due", table_name="notices", postgresql_where=sa.text("status = 'pending'")
    )
    op.create_index(
        "ix_notices_due",
        "notices",
        ["next_attempt_at"],
        unique=False,
        postgresql_where=sa.text("status IN ('pending', 'sending')"),
    )
    op.create_table(
        "reminders",
        sa.Column("alert_id", sa.String(length=36), nullable=False),
        sa.Column("recipient_customer_id", sa.String(length=100), nullable=False),
        sa.Column("customer_id", sa.String(length=100), nullable=False),
        sa.Column("recipient_role", sa.String(length=20), nullable=False),
        sa.Column("base_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_no", sa.Integer(), nullable=False),
        sa.Column("next_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stopped_reason", sa.String(length=40), nullable=True),
        sa.PrimaryKeyConstraint("alert_id", "recipient_customer_id", name=op.f("pk_reminders")),
    )
    op.create_index(
        "ix_reminders_due",
        "reminders",
        ["next_due_at"],
        unique=False,
        postgresql_where=sa.text("next_due_at IS NOT NULL"),
    )
    op.create_table(
        "alert_responses",
        sa.Column("alert_id", sa.String(length=36), nullable=False),
        sa.Column("customer_id", sa.String(length=100), nullable=False),
        sa.Column("response", sa.String(length=40), nullable=False),
        sa.Column("responded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("alert_id", name=op.f("pk_alert_responses")),
    )


def downgrade() -> None:
    op.drop_table("alert_responses")
    op.drop_index(
        "ix_reminders_due",
        table_name="reminders",
        postgresql_where=sa.text("next_due_at IS NOT NULL"),
    )
    op.drop_table("reminders")
    op.drop_index(
        "ix_notices_due",
        table_name="notices",
        postgresql_where=sa.text("status IN ('pending', 'sending')"),
    )
    op.create_index(
        "ix_notices_due",
        "notices",
        ["next_attempt_at"],
        unique=False,
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.execute("DELETE FROM notices WHERE kind = 'reminder' AND reminder_no > 1")
    op.drop_constraint(
        op.f("uq_notices_alert_kind_version_recipient_reminder"), "notices", type_="unique"
    )
    op.create_unique_constraint(
        op.f("uq_notices_alert_id_kind_alert_version_recipient_customer_id"),
        "notices",
        ["alert_id", "kind", "alert_version", "recipient_customer_id"],
    )
    op.execute("UPDATE notices SET status = 'pending' WHERE status = 'sending'")
    op.drop_column("notices", "resent_in_doubt")
    op.drop_column("notices", "sending_at")
    op.drop_column("notices", "reminder_no")
