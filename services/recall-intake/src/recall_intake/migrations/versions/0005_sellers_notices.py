"""seller notices: contacts, webhooks, notices, sale incidents, compliance letters (issue 16)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 15:00:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _now() -> sa.TextClause:
    return sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "seller_contacts",
        sa.Column("seller_id", sa.String(length=100), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["seller_id"], ["sellers.seller_id"], name=op.f("fk_seller_contacts_seller_id_sellers")
        ),
        sa.PrimaryKeyConstraint("seller_id", name=op.f("pk_seller_contacts")),
    )
    op.create_table(
        "webhook_endpoints",
        sa.Column("endpoint_id", sa.String(length=36), nullable=False),
        sa.Column("seller_id", sa.String(length=100), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("secret", sa.String(length=100), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["seller_id"],
            ["sellers.seller_id"],
            name=op.f("fk_webhook_endpoints_seller_id_sellers"),
        ),
        sa.PrimaryKeyConstraint("endpoint_id", name=op.f("pk_webhook_endpoints")),
    )
    op.create_index(
        op.f("ix_webhook_endpoints_seller_id"), "webhook_endpoints", ["seller_id"], unique=False
    )
    op.create_index(
        "uq_webhook_endpoints_seller_idempotency_key",
        "webhook_endpoints",
        ["seller_id", "idempotency_key"],
        unique=True,
        postgresql_where=sa.text("idempotency_key IS NOT NULL"),
    )
    op.create_table(
        "seller_notices",
        sa.Column("notice_id", sa.String(length=64), nullable=False),
        sa.Column("recall_id", sa.String(length=64), nullable=False),
        sa.Column("seller_id", sa.String(length=100), nullable=False),
        sa.Column("recall_version", sa.Integer(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("severity", sa.String(length=20), nullable=False),
        sa.Column("product_ids", postgresql.ARRAY(sa.String(length=100)), nullable=False),
        sa.Column("status", sa.String(length=30), nullable=False),
        sa.Column("notified_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ack_due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_by", sa.String(length=36), nullable=True),
        sa.Column("removal_confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("units_removed", sa.Integer(), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("email_status", sa.String(length=20), nullable=False),
        sa.Column("email_attempts", sa.Integer(), nullable=False),
        sa.Column("email_next_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("email_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("notice_id", name=op.f("pk_seller_notices")),
    )
    op.create_index(
        op.f("ix_seller_notices_recall_id"), "seller_notices", ["recall_id"], unique=False
    )
    op.create_index(
        op.f("ix_seller_notices_seller_id"), "seller_notices", ["seller_id"], unique=False
    )
    op.create_index(
        "uq_seller_notices_recall_seller", "seller_notices", ["recall_id", "seller_id"], unique=True
    )
    op.create_index(
        "ix_seller_notices_notified", "seller_notices", ["notified_at", "notice_id"], unique=False
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("delivery_id", sa.String(length=64), nullable=False),
        sa.Column("endpoint_id", sa.String(length=36), nullable=False),
        sa.Column("seller_id", sa.String(length=100), nullable=False),
        sa.Column("event_type", sa.String(length=60), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["webhook_endpoints.endpoint_id"],
            name=op.f("fk_webhook_deliveries_endpoint_id_webhook_endpoints"),
        ),
        sa.PrimaryKeyConstraint("delivery_id", name=op.f("pk_webhook_deliveries")),
    )
    op.create_index(
        op.f("ix_webhook_deliveries_seller_id"), "webhook_deliveries", ["seller_id"], unique=False
    )
    op.create_index(
        "ix_webhook_deliveries_due",
        "webhook_deliveries",
        ["next_attempt_at"],
        unique=False,
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        "ix_webhook_deliveries_created",
        "webhook_deliveries",
        ["created_at", "delivery_id"],
        unique=False,
    )
    op.create_table(
        "webhook_attempts",
        sa.Column("delivery_id", sa.String(length=64), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["webhook_deliveries.delivery_id"],
            name=op.f("fk_webhook_attempts_delivery_id_webhook_deliveries"),
        ),
        sa.PrimaryKeyConstraint("delivery_id", "attempt", name=op.f("pk_webhook_attempts")),
    )
    op.create_table(
        "sale_incidents",
        sa.Column("incident_id", sa.String(length=64), nullable=False),
        sa.Column("recall_id", sa.String(length=64), nullable=False),
        sa.Column("seller_id", sa.String(length=100), nullable=False),
        sa.Column("product_id", sa.String(length=100), nullable=False),
        sa.Column("order_id", sa.String(length=100), nullable=False),
        sa.Column("line_id", sa.String(length=100), nullable=False),
        sa.Column("placed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recall_published_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("resolution", sa.Text(), nullable=False),
        sa.Column("detected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("incident_id", name=op.f("pk_sale_incidents")),
    )
    op.create_index(
        op.f("ix_sale_incidents_recall_id"), "sale_incidents", ["recall_id"], unique=False
    )
    op.create_index(
        op.f("ix_sale_incidents_seller_id"), "sale_incidents", ["seller_id"], unique=False
    )
    op.create_index(
        "ix_sale_incidents_detected", "sale_incidents", ["detected_at", "incident_id"], unique=False
    )
    op.create_table(
        "compliance_letters",
        sa.Column("letter_id", sa.String(length=36), nullable=False),
        sa.Column("recall_id", sa.String(length=36), nullable=False),
        sa.Column("seller_id", sa.String(length=100), nullable=False),
        sa.Column("product_id", sa.String(length=100), nullable=False),
        sa.Column("made_after", sa.Date(), nullable=True),
        sa.Column("lots", postgresql.ARRAY(sa.String(length=200)), nullable=False),
        sa.Column("statement", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=True),
        sa.Column("request_fingerprint", sa.String(length=64), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(length=36), nullable=True),
        sa.Column("decision_note", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["recall_id"],
            ["recalls.recall_id"],
            name=op.f("fk_compliance_letters_recall_id_recalls"),
        ),
        sa.ForeignKeyConstraint(
            ["seller_id"],
            ["sellers.seller_id"],
            name=op.f("fk_compliance_letters_seller_id_sellers"),
        ),
        sa.PrimaryKeyConstraint("letter_id", name=op.f("pk_compliance_letters")),
    )
    op.create_index(
        op.f("ix_compliance_letters_recall_id"), "compliance_letters", ["recall_id"], unique=False
    )
    op.create_index(
        op.f("ix_compliance_letters_seller_id"), "compliance_letters", ["seller_id"], unique=False
    )
    op.create_index(
        "uq_compliance_letters_seller_idempotency_key",
        "compliance_letters",
        ["seller_id", "idempotency_key"],
        unique=True,
        postgresql_where=sa.text("idempotency_key IS NOT NULL"),
    )
    op.create_index(
        "ix_compliance_letters_submitted",
        "compliance_letters",
        ["submitted_at", "letter_id"],
        unique=False,
    )


def downgrade() -> None:
    for table in (
        "compliance_letters",
        "sale_incidents",
        "webhook_attempts",
        "webhook_deliveries",
        "seller_notices",
        "webhook_endpoints",
        "seller_contacts",
    ):
        op.drop_table(table)
