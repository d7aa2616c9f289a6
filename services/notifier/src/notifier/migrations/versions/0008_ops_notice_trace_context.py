"""notices keep the trace context of the alert event that queued them, so the SMTP send joins the
recall's trace

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 15:20:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable, no default: adding it rewrites nothing, and a notice queued without a trace (tracing
    # off, a reminder) keeps NULL.
    op.add_column("notices", sa.Column("traceparent", sa.Text(), nullable=True))
    op.add_column("notices", sa.Column("tracestate", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("notices", "tracestate")
    op.drop_column("notices", "traceparent")
