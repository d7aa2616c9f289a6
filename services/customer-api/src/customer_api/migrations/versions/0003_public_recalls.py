"""public_recalls: published recalls for the public pages

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 12:45:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "public_recalls",
        sa.Column("recall_id", sa.String(length=36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("snapshot", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("recall_id", name=op.f("pk_public_recalls")),
    )
    op.create_index("ix_public_recalls_published", "public_recalls", ["published_at"])


def downgrade() -> None:
    op.drop_index("ix_public_recalls_published", table_name="public_recalls")
    op.drop_table("public_recalls")
