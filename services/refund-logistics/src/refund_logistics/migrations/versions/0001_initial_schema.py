"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-25 21:01:02.751806
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
        sa.Column("recall_id", sa.String(length=64), nullable=False),
        sa.Column("alert_version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("lines", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.PrimaryKeyConstraint("alert_id", name=op.f("pk_alerts")),
    )
    op.create_index(op.f("ix_alerts_recall_id"), "alerts", ["recall_id"], unique=False)
    op.create_table(
        "cases",
        sa.Column("case_id", sa.String(length=36), nullable=False),
        sa.Column("request_id", sa.String(length=36), nullable=False),
        sa.Column("alert_id", sa.String(length=36), nullable=False),
        sa.Column("customer_id", sa.String(length=100), nullable=False),
        sa.Column("recall_id", sa.String(length=64), nullable=False),
        sa.Column("seller_id", sa.String(length=100), nullable=True),
        sa.Column("remedy", sa.String(length=40), nullable=False),
        sa.Column("state", sa.String(length=30), nullable=False),
        sa.Column("waiting_for", sa.String(length=30), nullable=True),
        sa.Column("refunded_amount", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("case_id", name=op.f("pk_cases")),
        sa.UniqueConstraint("request_id", name=op.f("uq_cases_request_id")),
    )
    op.create_index(op.f("ix_cases_alert_id"), "cases", ["alert_id"], unique=False)
    op.create_index(op.f("ix_cases_recall_id"), "cases", ["recall_id"], unique=False)
    op.create_table(
        "recalls",
        sa.Column("recall_id", sa.String(length=64), nullable=False),
        sa.Column("seller_id", sa.String(length=100), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("logistics_enrolled", sa.Boolean(), nullable=False),
        sa.Column("consumer_contact", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("recall_id", name=op.f("pk_recalls")),
    )
    op.create_index(op.f("ix_recalls_seller_id"), "recalls", ["seller_id"], unique=False)
    op.create_table(
        "case_transitions",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("case_id", sa.String(length=36), nullable=False),
        sa.Column("transition", sa.String(length=40), nullable=False),
        sa.Column("from_state", sa.String(length=30), nullable=True),
        sa.Column("to_state", sa.String(length=30), nullable=False),
        sa.Column(
            "at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.case_id"], name=op.f("fk_case_transitions_case_id_cases")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_transitions")),
    )
    op.create_index(
        op.f("ix_case_transitions_case_id"), "case_transitions", ["case_id"], unique=False
    )
    op.create_table(
        "refunds",
        sa.Column("refund_id", sa.String(length=36), nullable=False),
        sa.Column("case_id", sa.String(length=36), nullable=False),
        sa.Column("line_id", sa.String(length=100), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("amount", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("provider_ref", sa.String(length=200), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.case_id"], name=op.f("fk_refunds_case_id_cases")
        ),
        sa.PrimaryKeyConstraint("refund_id", name=op.f("pk_refunds")),
        sa.UniqueConstraint("case_id", "line_id", name=op.f("uq_refunds_case_id_line_id")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_refunds_idempotency_key")),
    )
    op.create_table(
        "seller_ledger",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("seller_id", sa.String(length=100), nullable=True),
        sa.Column("case_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("amount", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.case_id"], name=op.f("fk_seller_ledger_case_id_cases")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_seller_ledger")),
        sa.UniqueConstraint("case_id", "kind", name=op.f("uq_seller_ledger_case_id_kind")),
    )
    op.create_index(
        op.f("ix_seller_ledger_seller_id"), "seller_ledger", ["seller_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_seller_ledger_seller_id"), table_name="seller_ledger")
    op.drop_table("seller_ledger")
    op.drop_table("refunds")
    op.drop_index(op.f("ix_case_transitions_case_id"), table_name="case_transitions")
    op.drop_table("case_transitions")
    op.drop_index(op.f("ix_recalls_seller_id"), table_name="recalls")
    op.drop_table("recalls")
    op.drop_index(op.f("ix_cases_recall_id"), table_name="cases")
    op.drop_index(op.f("ix_cases_alert_id"), table_name="cases")
    op.drop_table("cases")
    op.drop_index(op.f("ix_alerts_recall_id"), table_name="alerts")
    op.drop_table("alerts")
    drop_messaging_tables()
