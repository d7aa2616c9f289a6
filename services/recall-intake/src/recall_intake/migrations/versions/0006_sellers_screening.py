"""catalog screening: listings' brand, screening_candidates (issue 16)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 15:30:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Listings read before this have no brand until the catalog sends them again (compacted topic:
    # a consumer group reset replays them): screening compares models without it meanwhile.
    op.add_column("listings", sa.Column("brand", sa.Text(), server_default="", nullable=False))
    op.create_table(
        "screening_candidates",
        sa.Column("candidate_id", sa.String(length=64), nullable=False),
        sa.Column("recall_id", sa.String(length=36), nullable=False),
        sa.Column("product_id", sa.String(length=100), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("seller_ids", postgresql.ARRAY(sa.String(length=100)), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("reasons", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(length=36), nullable=True),
        sa.ForeignKeyConstraint(
            ["recall_id"],
            ["recalls.recall_id"],
            name=op.f("fk_screening_candidates_recall_id_recalls"),
        ),
        sa.PrimaryKeyConstraint("candidate_id", name=op.f("pk_screening_candidates")),
    )
    op.create_index(
        op.f("ix_screening_candidates_recall_id"),
        "screening_candidates",
        ["recall_id"],
        unique=False,
    )
    op.create_index(
        "uq_screening_candidates_recall_product",
        "screening_candidates",
        ["recall_id", "product_id"],
        unique=True,
    )
    op.create_index(
        "ix_screening_candidates_created",
        "screening_candidates",
        ["created_at", "candidate_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_table("screening_candidates")
    op.drop_column("listings", "brand")
