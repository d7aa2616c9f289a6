"""Proof of destruction review: checks and status on case_proofs, perceptual-hash fingerprints

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 12:00:00.000000
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "case_proofs",
        sa.Column("status", sa.String(length=20), server_default="accepted", nullable=False),
    )
    op.add_column(
        "case_proofs", sa.Column("attempt", sa.Integer(), server_default="1", nullable=False)
    )
    op.add_column("case_proofs", sa.Column("width", sa.Integer(), nullable=True))
    op.add_column("case_proofs", sa.Column("height", sa.Integer(), nullable=True))
    op.add_column(
        "case_proofs",
        sa.Column(
            "flags",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
    )
    op.add_column(
        "case_proofs", sa.Column("reviewed_by_key_id", sa.String(length=64), nullable=True)
    )
    op.add_column(
        "case_proofs", sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column("case_proofs", sa.Column("rejection_reason", sa.Text(), nullable=True))
    op.create_index(
        "ix_case_proofs_pending_review",
        "case_proofs",
        ["received_at"],
        unique=False,
        postgresql_where=sa.text("status = 'pending_review'"),
    )
    op.create_table(
        "proof_fingerprints",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("case_id", sa.String(length=36), nullable=False),
        sa.Column("customer_id", sa.String(length=100), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("phash", sa.BigInteger(), nullable=False),
        sa.Column("band0", sa.Integer(), nullable=False),
        sa.Column("band1", sa.Integer(), nullable=False),
        sa.Column("band2", sa.Integer(), nullable=False),
        sa.Column("band3", sa.Integer(), nullable=False),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.case_id"], name=op.f("fk_proof_fingerprints_case_id_cases")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_proof_fingerprints")),
        sa.UniqueConstraint(
            "case_id", "attempt", name=op.f("uq_proof_fingerprints_case_id_attempt")
        ),
    )
    for column in ("case_id", "band0", "band1", "band2", "band3"):
        op.create_index(
            op.f(f"ix_proof_fingerprints_{column}"), "proof_fingerprints", [column], unique=False
        )


def downgrade() -> None:
    op.drop_table("proof_fingerprints")
    op.drop_index("ix_case_proofs_pending_review", table_name="case_proofs")
    for column in (
        "rejection_reason",
        "reviewed_at",
        "reviewed_by_key_id",
        "flags",
        "height",
        "width",
        "attempt",
        "status",
    ):
        op.drop_column("case_proofs", column)
