"""stop_sale_clearances: letters by serial range and best-before date (issue 16, sellers)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01 19:10:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "stop_sale_clearances",
        sa.Column(
            "serials",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
    )
    op.add_column("stop_sale_clearances", sa.Column("best_before_after", sa.Date(), nullable=True))


def downgrade() -> None:
    op.drop_column("stop_sale_clearances", "best_before_after")
    op.drop_column("stop_sale_clearances", "serials")
