"""recall_identifiers: active recalls by the identifiers they name

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 00:30:00
"""

import sqlalchemy as sa
from alembic import op

from recall_shared.identifiers import model_key

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        "recall_identifiers",
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("value", sa.String(length=200), nullable=False),
        sa.Column("recall_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("kind", "value", "recall_id", name=op.f("pk_recall_identifiers")),
    )
    op.create_index(
        "ix_recall_identifiers_recall_id", "recall_identifiers", ["recall_id"], unique=False
    )
    # Index the recalls already active (their scope is in the stored snapshot).
    rows = set()
    for recall_id, snapshot in op.get_bind().execute(
        sa.text("SELECT recall_id, snapshot FROM recalls WHERE status = 'active'")
    ):
        for rule in snapshot.get("rules", []):
            rows |= {("product", p, recall_id) for p in rule.get("product_ids", [])}
            rows |= {("gtin", g, recall_id) for g in rule.get("gtins", [])}
            rows |= {
                ("model", k, recall_id)
                for m in rule.get("model_numbers", [])
                if (k := model_key(m))
            }
    if rows:
        op.bulk_insert(table, [{"kind": k, "value": v, "recall_id": r} for k, v, r in sorted(rows)])


def downgrade() -> None:
    op.drop_index("ix_recall_identifiers_recall_id", table_name="recall_identifiers")
    op.drop_table("recall_identifiers")
