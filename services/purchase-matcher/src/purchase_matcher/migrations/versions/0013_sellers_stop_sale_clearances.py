"""stop_sale_clearances: accepted Letters of Compliance (issue 16, sellers)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01 15:20:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stop_sale_clearances",
        sa.Column("recall_id", sa.String(length=64), nullable=False),
        sa.Column("product_id", sa.String(length=100), nullable=False),
        sa.Column("seller_id", sa.String(length=100), nullable=False),
        sa.Column("letter_id", sa.String(length=64), nullable=False),
        sa.Column("made_after", sa.Date(), nullable=True),
        sa.Column("lots", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "recall_id", "product_id", "seller_id", name=op.f("pk_stop_sale_clearances")
        ),
    )


def downgrade() -> None:
    op.drop_table("stop_sale_clearances")
