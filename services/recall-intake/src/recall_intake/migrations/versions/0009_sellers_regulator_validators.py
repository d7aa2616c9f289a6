"""regulator watcher's conditional requests: the validators of each request of a source's pass
(issue 16)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 19:00:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "regulator_cursors",
        sa.Column(
            "validators",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
    )


def downgrade() -> None:
    op.drop_column("regulator_cursors", "validators")
