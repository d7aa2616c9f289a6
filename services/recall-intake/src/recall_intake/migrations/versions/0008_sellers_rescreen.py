"""re-screening: the identifiers a draft was screened by, to screen listings that come later
(issue 16)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 18:45:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

COLUMNS = {"screening_gtins": 14, "screening_model_keys": 200}


def upgrade() -> None:
    # Drafts screened before this have none until they are screened again (an edit, an import,
    # POST /v1/operator/recalls/{id}/screening); listings arriving meanwhile are not screened.
    for column, length in COLUMNS.items():
        op.add_column(
            "recalls",
            sa.Column(
                column,
                postgresql.ARRAY(sa.String(length=length)),
                server_default="{}",
                nullable=False,
            ),
        )
        op.create_index(
            f"ix_recalls_{column}",
            "recalls",
            [column],
            postgresql_using="gin",
            postgresql_where=sa.text("status = 'draft'"),
        )


def downgrade() -> None:
    for column in COLUMNS:
        op.drop_index(f"ix_recalls_{column}", table_name="recalls")
        op.drop_column("recalls", column)
