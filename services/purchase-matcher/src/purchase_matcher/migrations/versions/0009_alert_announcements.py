"""alert_announcements: new alerts sent before their pass commits, swept by the next pass

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27 09:00:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_announcements",
        sa.Column("announcement_id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("recall_id", sa.String(length=64), nullable=False),
        sa.Column("recall_version", sa.Integer(), nullable=False),
        sa.Column("pass_id", sa.String(length=36), nullable=False),
        sa.Column("customer_ids", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("fingerprints", sa.LargeBinary(), nullable=False),
        sa.Column("tiers", sa.Text(), nullable=False),
        sa.Column(
            "announced_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("announcement_id", name=op.f("pk_alert_announcements")),
    )
    op.create_index(
        "ix_alert_announcements_recall_id", "alert_announcements", ["recall_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_alert_announcements_recall_id", table_name="alert_announcements")
    op.drop_table("alert_announcements")
