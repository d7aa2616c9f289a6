"""postal letters and the fall back after N days (issue 15): contacts' postal address and letter
opt-out; the queued letters and the sent notices still unconfirmed, found without a scan

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 15:30:00.000000
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("contacts", sa.Column("postal_address", postgresql.JSONB(), nullable=True))
    op.add_column(
        "contacts",
        sa.Column("letter_opt_out", sa.Boolean(), nullable=False, server_default="false"),
    )
    # Set once the unconfirmed-notice check has dealt with a sent notice (followed up on the next
    # channel, or nothing to do): it is not looked at again.
    op.add_column(
        "notices",
        sa.Column("followed_up", sa.Boolean(), nullable=False, server_default="false"),
    )
    op.create_index(
        "ix_notices_letters_queued",
        "notices",
        ["created_at"],
        postgresql_where=sa.text("channel = 'letter' AND status IN ('pending', 'sending')"),
    )
    op.create_index(
        "ix_notices_unconfirmed",
        "notices",
        ["sent_at"],
        postgresql_where=sa.text(
            "status = 'sent' AND delivery IS NULL AND NOT followed_up AND channel <> 'letter'"
        ),
    )


def downgrade() -> None:
    op.drop_index("ix_notices_unconfirmed", table_name="notices")
    op.drop_index("ix_notices_letters_queued", table_name="notices")
    op.execute("DELETE FROM notices WHERE channel = 'letter'")
    op.drop_column("notices", "followed_up")
    op.drop_column("contacts", "letter_opt_out")
    op.drop_column("contacts", "postal_address")
