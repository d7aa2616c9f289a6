"""seller notices told again: updates, the listings an update added, listings lifted (issue 16)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 18:30:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "seller_notices", sa.Column("updates", sa.Integer(), server_default="0", nullable=False)
    )
    for column in ("added_product_ids", "lifted_product_ids"):
        op.add_column(
            "seller_notices",
            sa.Column(
                column,
                postgresql.ARRAY(sa.String(length=100)),
                server_default="{}",
                nullable=False,
            ),
        )


def downgrade() -> None:
    for column in ("lifted_product_ids", "added_product_ids", "updates"):
        op.drop_column("seller_notices", column)
