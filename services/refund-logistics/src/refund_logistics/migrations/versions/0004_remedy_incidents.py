"""incidents and injuries a recall states, at publication and to date (issue 14's monthly report)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 15:30:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

COLUMNS = (
    "incidents_at_publication",
    "injuries_at_publication",
    "incidents_reported",
    "injuries_reported",
)


def upgrade() -> None:
    for name in COLUMNS:
        op.add_column("recalls", sa.Column(name, sa.Integer(), nullable=True))


def downgrade() -> None:
    for name in COLUMNS:
        op.drop_column("recalls", name)
