"""notices: what became of a sent notice (delivered, bounced hard or soft, complained), as DSNs,
feedback reports and the providers' webhooks report it; the SMS channel (a notice's channel, the
contact's phone and SMS opt-out)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 12:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("contacts", sa.Column("phone", sa.String(20), nullable=True))
    op.add_column(
        "contacts",
        sa.Column("sms_opt_out", sa.Boolean(), nullable=False, server_default="false"),
    )
    op.add_column(
        "notices", sa.Column("channel", sa.String(10), nullable=False, server_default="email")
    )
    # A fallback SMS is its own notice of the same (alert, kind, version, recipient, reminder).
    op.drop_constraint("uq_notices_alert_kind_version_recipient_reminder", "notices")
    op.create_unique_constraint(
        "uq_notices_alert_kind_version_recipient_reminder_channel",
        "notices",
        ["alert_id", "kind", "alert_version", "recipient_customer_id", "reminder_no", "channel"],
    )
    op.add_column("notices", sa.Column("delivery", sa.String(20), nullable=True))
    op.add_column("notices", sa.Column("bounce_type", sa.String(10), nullable=True))
    op.add_column("notices", sa.Column("delivery_status", sa.String(20), nullable=True))
    op.add_column("notices", sa.Column("delivery_detail", sa.Text(), nullable=True))
    op.add_column("notices", sa.Column("delivery_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "notices", sa.Column("soft_bounces", sa.Integer(), nullable=False, server_default="0")
    )
    # The unreachable queue: final failures per recipient, found without a scan.
    op.create_index(
        "ix_notices_unreachable",
        "notices",
        ["recipient_customer_id"],
        postgresql_where=sa.text("status IN ('waiting_contact', 'failed') OR delivery = 'bounced'"),
    )


def downgrade() -> None:
    op.drop_index("ix_notices_unreachable", table_name="notices")
    op.execute("DELETE FROM notices WHERE channel <> 'email'")
    op.drop_constraint("uq_notices_alert_kind_version_recipient_reminder_channel", "notices")
    op.create_unique_constraint(
        "uq_notices_alert_kind_version_recipient_reminder",
        "notices",
        ["alert_id", "kind", "alert_version", "recipient_customer_id", "reminder_no"],
    )
    op.drop_column("notices", "channel")
    op.drop_column("contacts", "sms_opt_out")
    op.drop_column("contacts", "phone")
    for column in (
        "soft_bounces",
        "delivery_at",
        "delivery_detail",
        "delivery_status",
        "bounce_type",
        "delivery",
    ):
        op.drop_column("notices", column)
