"""label_confirmations: what customers read on their product's label when it confirmed their alert
(issue 17)

Revision ID: 0012
Revises: 0011_reach
Create Date: 2026-12-01 15:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011_reach"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "label_confirmations",
        sa.Column("recall_id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=100), nullable=False),
        sa.Column("alert_id", sa.String(length=36), nullable=False),
        sa.Column("lot", sa.String(length=200), nullable=True),
        sa.Column("serial", sa.String(length=200), nullable=True),
        sa.Column("manufactured_on", sa.Date(), nullable=True),
        sa.Column("best_before", sa.Date(), nullable=True),
        sa.Column("expires_on", sa.Date(), nullable=True),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("recall_id", "customer_id", name=op.f("pk_label_confirmations")),
    )


def downgrade() -> None:
    op.drop_table("label_confirmations")
