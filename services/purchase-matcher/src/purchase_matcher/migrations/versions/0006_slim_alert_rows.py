"""alerts: small rows keyed by (recall, customer)

The alert's full state travels on alerts.v1; the matcher decides changes from the fingerprint and
reports lines and units per recall, so a recall reaching a million customers writes a million small
rows. The key is (recall_id, customer_id), the order reconcile writes in, with one index by customer
for re-checks; the alert id is derived from that pair, so it needs no index of its own (three
indexes per row were one too many).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 00:00:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "alerts", sa.Column("line_count", sa.Integer(), nullable=False, server_default="0")
    )
    op.add_column("alerts", sa.Column("units", sa.Integer(), nullable=False, server_default="0"))
    op.execute(
        "UPDATE alerts SET line_count = jsonb_array_length(state->'lines'), "
        "units = (SELECT coalesce(sum((l->>'units')::int), 0) FROM "
        "jsonb_array_elements(state->'lines') l)"
    )
    op.alter_column("alerts", "line_count", server_default=None)
    op.alter_column("alerts", "units", server_default=None)
    op.drop_column("alerts", "state")
    op.drop_constraint("pk_alerts", "alerts", type_="primary")
    op.drop_constraint("uq_alerts_customer_id_recall_id", "alerts", type_="unique")
    op.drop_index("ix_alerts_recall_customer", table_name="alerts")
    op.create_primary_key("pk_alerts", "alerts", ["recall_id", "customer_id"])
    op.create_index("ix_alerts_customer_id", "alerts", ["customer_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_alerts_customer_id", table_name="alerts")
    op.drop_constraint("pk_alerts", "alerts", type_="primary")
    op.create_primary_key("pk_alerts", "alerts", ["alert_id"])
    op.create_unique_constraint(
        "uq_alerts_customer_id_recall_id", "alerts", ["customer_id", "recall_id"]
    )
    op.create_index(
        "ix_alerts_recall_customer", "alerts", ["recall_id", "customer_id"], unique=False
    )
    # The full state is not kept any more; a downgraded row carries an empty one until the next
    # reconcile.
    op.add_column(
        "alerts", sa.Column("state", postgresql.JSONB(), nullable=False, server_default="{}")
    )
    op.alter_column("alerts", "state", server_default=None)
    op.drop_column("alerts", "units")
    op.drop_column("alerts", "line_count")
