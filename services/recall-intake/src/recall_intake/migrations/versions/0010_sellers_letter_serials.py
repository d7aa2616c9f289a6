"""compliance letters by serial range and best-before date (issue 16)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 19:10:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "compliance_letters",
        sa.Column(
            "serials",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
    )
    op.add_column("compliance_letters", sa.Column("best_before_after", sa.Date(), nullable=True))


def downgrade() -> None:
    op.drop_column("compliance_letters", "best_before_after")
    op.drop_column("compliance_letters", "serials")
