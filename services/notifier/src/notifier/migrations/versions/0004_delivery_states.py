"""notices: what became of a sent notice (delivered, bounced hard or soft, complained), as DSNs,
feedback reports and the provider's webhook report it

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 12:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("notices", sa.Column("delivery", sa.String(20), nullable=True))
    op.add_column("notices", sa.Column("bounce_type", sa.String(10), nullable=True))
    op.add_column("notices", sa.Column("delivery_status", sa.String(20), nullable=True))
    op.add_column("notices", sa.Column("delivery_detail", sa.Text(), nullable=True))
    op.add_column("notices", sa.Column("delivery_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "notices", sa.Column("soft_bounces", sa.Integer(), nullable=False, server_default="0")
    )
    # The unreachable queue: final failures per recipient, found without a scan.
    op.create_index(
        "ix_notices_unreachable",
        "notices",
        ["recipient_customer_id"],
        postgresql_where=sa.text("status IN ('waiting_contact', 'failed') OR delivery = 'bounced'"),
    )


def downgrade() -> None:
    op.drop_index("ix_notices_unreachable", table_name="notices")
    for column in (
        "soft_bounces",
        "delivery_at",
        "delivery_detail",
        "delivery_status",
        "bounce_type",
        "delivery",
    ):
        op.drop_column("notices", column)
