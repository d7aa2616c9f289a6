"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-25 20:58:43.549184
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from recall_shared.migrations import create_messaging_tables, drop_messaging_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_messaging_tables()
    op.create_table(
        "alerts",
        sa.Column("alert_id", sa.String(length=36), nullable=False),
        sa.Column("customer_id", sa.String(length=100), nullable=False),
        sa.Column("alert_version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("state", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("alert_id", name=op.f("pk_alerts")),
    )
    op.create_index(op.f("ix_alerts_customer_id"), "alerts", ["customer_id"], unique=False)
    op.create_table(
        "contacts",
        sa.Column("customer_id", sa.String(length=100), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("safety_email", sa.String(length=320), nullable=True),
        sa.Column("locale", sa.String(length=10), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_contacts")),
    )
    op.create_table(
        "notices",
        sa.Column("notice_id", sa.String(length=36), nullable=False),
        sa.Column("alert_id", sa.String(length=36), nullable=False),
        sa.Column("customer_id", sa.String(length=100), nullable=False),
        sa.Column("recipient_customer_id", sa.String(length=100), nullable=False),
        sa.Column("recipient_role", sa.String(length=20), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("alert_version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column(
            "next_attempt_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("sent_to", sa.String(length=320), nullable=True),
        sa.Column("message_id", sa.String(length=200), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("notice_id", name=op.f("pk_notices")),
        sa.UniqueConstraint(
            "alert_id",
            "kind",
            "alert_version",
            "recipient_customer_id",
            name=op.f("uq_notices_alert_id_kind_alert_version_recipient_customer_id"),
        ),
    )
    op.create_index(
        "ix_notices_due",
        "notices",
        ["next_attempt_at"],
        unique=False,
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        "ix_notices_waiting",
        "notices",
        ["recipient_customer_id"],
        unique=False,
        postgresql_where=sa.text("status = 'waiting_contact'"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_notices_waiting",
        table_name="notices",
        postgresql_where=sa.text("status = 'waiting_contact'"),
    )
    op.drop_index(
        "ix_notices_due", table_name="notices", postgresql_where=sa.text("status = 'pending'")
    )
    op.drop_table("notices")
    op.drop_table("contacts")
    op.drop_index(op.f("ix_alerts_customer_id"), table_name="alerts")
    op.drop_table("alerts")
    drop_messaging_tables()
