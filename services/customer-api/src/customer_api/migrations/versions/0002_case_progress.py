"""remedy case progress on the customer's page: waiting_for, return label, timeline

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 12:30:00.000000
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("remedy_requests", sa.Column("waiting_for", sa.String(length=30), nullable=True))
    op.add_column("remedy_requests", sa.Column("label_url", sa.Text(), nullable=True))
    op.add_column(
        "remedy_requests",
        sa.Column("label_tracking_number", sa.String(length=200), nullable=True),
    )
    op.add_column(
        "remedy_requests",
        sa.Column(
            "timeline",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
    )


def downgrade() -> None:
    for column in ("timeline", "label_tracking_number", "label_url", "waiting_for"):
        op.drop_column("remedy_requests", column)
