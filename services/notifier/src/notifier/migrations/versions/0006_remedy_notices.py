"""remedy notices (issue 14): what a return label, refund confirmation or replacement dispatch
notice tells, beside its notice row

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 15:20:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "remedy_notices",
        sa.Column("notice_id", sa.String(length=36), nullable=False),
        sa.Column("case_id", sa.String(length=36), nullable=False),
        sa.Column("remedy", sa.String(length=40), nullable=False),
        sa.Column("label_url", sa.Text(), nullable=True),
        sa.Column("tracking_number", sa.String(length=200), nullable=True),
        sa.Column("amount", sa.Numeric(14, 2), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.PrimaryKeyConstraint("notice_id", name=op.f("pk_remedy_notices")),
    )


def downgrade() -> None:
    op.drop_table("remedy_notices")
