"""letters returned undeliverable: the letter each notice went out in, and a contact's postal
address marked undeliverable (issue 15)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 18:45:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable, no default: adding them rewrites nothing.
    op.add_column("notices", sa.Column("letter_id", sa.String(100), nullable=True))
    op.create_index(
        "ix_notices_letter_id",
        "notices",
        ["letter_id"],
        postgresql_where=sa.text("letter_id IS NOT NULL"),
    )
    op.add_column(
        "contacts",
        sa.Column("postal_undeliverable_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_column("contacts", "postal_undeliverable_at")
    op.drop_index("ix_notices_letter_id", table_name="notices")
    op.drop_column("notices", "letter_id")
