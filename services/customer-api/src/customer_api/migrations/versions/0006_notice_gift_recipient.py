"""notices.gift_recipient: a notice sent to a gift's recipient on the purchaser's behalf, so the
purchaser's alert does not show it as sent to them

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 22:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "notices",
        sa.Column("gift_recipient", sa.Boolean(), server_default=sa.false(), nullable=False),
    )


def downgrade() -> None:
    op.drop_column("notices", "gift_recipient")
