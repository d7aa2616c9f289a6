"""regulator_cursors: where the regulator watcher stands per source (issue 16)

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 13:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "regulator_cursors",
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("since", sa.Date(), nullable=True),
        sa.Column("page", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("source", name=op.f("pk_regulator_cursors")),
    )


def downgrade() -> None:
    op.drop_table("regulator_cursors")
