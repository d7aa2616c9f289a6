"""alerts: index (recall_id, customer_id) instead of (recall_id)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 22:30:00
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_alerts_recall_customer", "alerts", ["recall_id", "customer_id"], unique=False
    )
    op.drop_index("ix_alerts_recall_id", table_name="alerts")


def downgrade() -> None:
    op.create_index("ix_alerts_recall_id", "alerts", ["recall_id"], unique=False)
    op.drop_index("ix_alerts_recall_customer", table_name="alerts")
