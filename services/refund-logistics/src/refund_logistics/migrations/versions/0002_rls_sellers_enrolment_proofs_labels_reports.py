"""RLS: seller keys, enrolments, proofs, labels, fulfilments, notices and not-affected answers;
refund intents (pending -> paid) with leases

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 09:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

from recall_shared.migrations import create_seller_keys_table

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_seller_keys_table()
    op.create_table(
        "enrolments",
        sa.Column("recall_id", sa.String(length=64), nullable=False),
        sa.Column("enrolled", sa.Boolean(), nullable=False),
        sa.Column("changed_by_key_id", sa.String(length=64), nullable=False),
        sa.Column(
            "changed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("recall_id", name=op.f("pk_enrolments")),
    )
    op.create_table(
        "not_affected",
        sa.Column("alert_id", sa.String(length=36), nullable=False),
        sa.Column("customer_id", sa.String(length=100), nullable=False),
        sa.Column("recall_id", sa.String(length=64), nullable=False),
        sa.Column("declared_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("alert_id", "customer_id", name=op.f("pk_not_affected")),
    )
    op.create_index(op.f("ix_not_affected_recall_id"), "not_affected", ["recall_id"], unique=False)
    op.create_table(
        "notices",
        sa.Column("notice_id", sa.String(length=64), nullable=False),
        sa.Column("alert_id", sa.String(length=36), nullable=False),
        sa.Column("customer_id", sa.String(length=100), nullable=False),
        sa.Column("recall_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("notice_id", name=op.f("pk_notices")),
    )
    op.create_index(op.f("ix_notices_recall_id"), "notices", ["recall_id"], unique=False)
    op.create_table(
        "case_proofs",
        sa.Column("case_id", sa.String(length=36), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.case_id"], name=op.f("fk_case_proofs_case_id_cases")
        ),
        sa.PrimaryKeyConstraint("case_id", name=op.f("pk_case_proofs")),
    )
    op.create_table(
        "case_proof_images",
        sa.Column("case_id", sa.String(length=36), nullable=False),
        sa.Column("image", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.case_id"], name=op.f("fk_case_proof_images_case_id_cases")
        ),
        sa.PrimaryKeyConstraint("case_id", name=op.f("pk_case_proof_images")),
    )
    op.create_table(
        "return_labels",
        sa.Column("case_id", sa.String(length=36), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("carrier_ref", sa.String(length=200), nullable=False),
        sa.Column("tracking_number", sa.String(length=100), nullable=False),
        sa.Column("label_url", sa.Text(), nullable=False),
        sa.Column("cost", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.case_id"], name=op.f("fk_return_labels_case_id_cases")
        ),
        sa.PrimaryKeyConstraint("case_id", name=op.f("pk_return_labels")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_return_labels_idempotency_key")),
    )
    op.create_table(
        "fulfilments",
        sa.Column("case_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("tracking_number", sa.String(length=100), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("by_key_id", sa.String(length=64), nullable=False),
        sa.Column(
            "at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.case_id"], name=op.f("fk_fulfilments_case_id_cases")
        ),
        sa.PrimaryKeyConstraint("case_id", name=op.f("pk_fulfilments")),
    )
    # Read models: what the report needs from recalls and alerts.
    op.add_column("recalls", sa.Column("title", sa.Text(), server_default="", nullable=False))
    op.add_column("recalls", sa.Column("regulator_number", sa.String(length=200), nullable=True))
    op.add_column("alerts", sa.Column("units", sa.Integer(), server_default="0", nullable=False))
    op.execute(
        "UPDATE alerts SET units = COALESCE((SELECT sum((l->>'units')::int) FROM "
        "jsonb_array_elements(lines) AS l), 0)"
    )
    op.add_column("cases", sa.Column("units", sa.Integer(), server_default="0", nullable=False))
    op.create_index("ix_cases_created_at_case_id", "cases", ["created_at", "case_id"], unique=False)
    # Refunds become intents settled after the provider answers; rows from 0001 were paid already.
    op.alter_column("refunds", "provider_ref", existing_type=sa.String(length=200), nullable=True)
    op.add_column("refunds", sa.Column("order_id", sa.String(length=100), nullable=True))
    op.add_column(
        "refunds",
        sa.Column(
            "method", sa.String(length=40), server_default="original_payment_method", nullable=False
        ),
    )
    op.add_column(
        "refunds", sa.Column("status", sa.String(length=20), server_default="paid", nullable=False)
    )
    op.alter_column("refunds", "status", server_default=None)
    op.add_column(
        "refunds", sa.Column("attempts", sa.Integer(), server_default="0", nullable=False)
    )
    op.add_column("refunds", sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True))
    op.add_column("refunds", sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("refunds", sa.Column("last_error", sa.Text(), nullable=True))
    op.execute("UPDATE refunds SET paid_at = created_at WHERE status = 'paid'")
    op.create_index(
        "ix_refunds_pending",
        "refunds",
        ["claimed_until"],
        unique=False,
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index(op.f("ix_refunds_line_id"), "refunds", ["line_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_refunds_line_id"), table_name="refunds")
    op.drop_index("ix_refunds_pending", table_name="refunds")
    op.execute("DELETE FROM refunds WHERE status <> 'paid'")
    for col in (
        "last_error",
        "paid_at",
        "claimed_until",
        "attempts",
        "status",
        "method",
        "order_id",
    ):
        op.drop_column("refunds", col)
    op.alter_column("refunds", "provider_ref", existing_type=sa.String(length=200), nullable=False)
    op.drop_index("ix_cases_created_at_case_id", table_name="cases")
    op.drop_column("cases", "units")
    op.drop_column("alerts", "units")
    op.drop_column("recalls", "regulator_number")
    op.drop_column("recalls", "title")
    op.drop_table("fulfilments")
    op.drop_table("return_labels")
    op.drop_table("case_proof_images")
    op.drop_table("case_proofs")
    op.drop_index(op.f("ix_notices_recall_id"), table_name="notices")
    op.drop_table("notices")
    op.drop_index(op.f("ix_not_affected_recall_id"), table_name="not_affected")
    op.drop_table("not_affected")
    op.drop_table("enrolments")
    op.drop_table("seller_keys")
