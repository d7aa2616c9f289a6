"""recall-intake's tables."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from recall_shared.db import new_metadata


class Base(DeclarativeBase):
    metadata = new_metadata()


class Seller(Base):
    __tablename__ = "sellers"
    seller_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ApiKey(Base):
    __tablename__ = "api_keys"
    key_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    display_prefix: Mapped[str] = mapped_column(String(20))
    role: Mapped[str] = mapped_column(String(20))  # seller | operator
    seller_id: Mapped[str | None] = mapped_column(ForeignKey("sellers.seller_id"), nullable=True)
    label: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Recall(Base):
    __tablename__ = "recalls"
    recall_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    seller_id: Mapped[str | None] = mapped_column(String(100), nullable=True, index=True)
    status: Mapped[str] = mapped_column(String(20))  # draft | published | closed
    version: Mapped[int] = mapped_column(Integer)  # the draft's or latest published version
    content: Mapped[dict] = mapped_column(JSONB)
    rules: Mapped[list] = mapped_column(JSONB)
    logistics_enrolled: Mapped[bool] = mapped_column(Boolean, default=False)
    source: Mapped[str] = mapped_column(String(20), default="api")  # api | import
    provenance: Mapped[dict | None] = mapped_column(
        JSONB, nullable=True
    )  # where imported values came from
    owner_key: Mapped[str] = mapped_column(String(120))  # seller id, or "operator"
    idempotency_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    request_fingerprint: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # Closed because it was withdrawn (issued in error), not completed; and why, for the public.
    withdrawn: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    close_reason: Mapped[str] = mapped_column(Text, default="", server_default="")
    # What the catalog screening matched a draft by (recall_intake.screening): a listing that comes
    # later with one of them is screened against the draft.
    screening_gtins: Mapped[list[str]] = mapped_column(
        ARRAY(String(14)), default=list, server_default="{}"
    )
    screening_model_keys: Mapped[list[str]] = mapped_column(
        ARRAY(String(200)), default=list, server_default="{}"
    )

    __table_args__ = (
        Index(
            "uq_recalls_owner_idempotency_key",
            "owner_key",
            "idempotency_key",
            unique=True,
            postgresql_where=text("idempotency_key IS NOT NULL"),
        ),
        Index("ix_recalls_created", "created_at", "recall_id"),
        *(
            Index(
                f"ix_recalls_{column}",
                column,
                postgresql_using="gin",
                postgresql_where=text("status = 'draft'"),
            )
            for column in ("screening_gtins", "screening_model_keys")
        ),
    )


class RecallVersion(Base):
    """Every published version, with its full scope, kept for good."""

    __tablename__ = "recall_versions"
    recall_id: Mapped[str] = mapped_column(ForeignKey("recalls.recall_id"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_type: Mapped[str] = mapped_column(String(60))
    snapshot: Mapped[dict] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Listing(Base):
    """Read model of catalog.listings.v1: which sellers offer which product (ownership checks)."""

    __tablename__ = "listings"
    product_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    title: Mapped[str] = mapped_column(Text, default="")
    brand: Mapped[str] = mapped_column(Text, default="", server_default="")
    seller_ids: Mapped[list[str]] = mapped_column(ARRAY(String(100)), default=list)
    gtins: Mapped[list[str]] = mapped_column(ARRAY(String(14)), default=list)
    model_keys: Mapped[list[str]] = mapped_column(ARRAY(String(200)), default=list)
    parent_product_id: Mapped[str | None] = mapped_column(String(100), nullable=True, index=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class RegulatorRecord(Base):
    """Every regulator record imported, so a re-published or re-imported record never makes a second
    recall."""

    __tablename__ = "regulator_records"
    agency: Mapped[str] = mapped_column(String(40), primary_key=True)
    reference: Mapped[str] = mapped_column(String(200), primary_key=True)
    recall_id: Mapped[str] = mapped_column(ForeignKey("recalls.recall_id"), index=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    times_seen: Mapped[int] = mapped_column(Integer, default=1)
    first_seen_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    last_seen_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class RegulatorCursor(Base):
    """Where the regulator watcher stands for one source: the newest record date imported, and the
    page a pass had reached (saved after each page, so a restart resumes there)."""

    __tablename__ = "regulator_cursors"
    source: Mapped[str] = mapped_column(String(40), primary_key=True)
    since: Mapped[date | None] = mapped_column(Date, nullable=True)
    page: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Conditional requests: per request of the latest pass (its URL with the query), the ETag and
    # Last-Modified it answered with and the page after it (regulator_watcher.Validators).
    validators: Mapped[dict] = mapped_column(
        JSONB, default=dict, server_default=text("'{}'::jsonb")
    )
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


# ------------------------------------------------------------------ seller notices (issue 16)
# GS1 Recall's message cycle: notification -> acknowledgement -> removal confirmation -> closeout.


class SellerContact(Base):
    """Where a seller's recall notices are emailed."""

    __tablename__ = "seller_contacts"
    seller_id: Mapped[str] = mapped_column(ForeignKey("sellers.seller_id"), primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class WebhookEndpoint(Base):
    """A seller's webhook: notices and incidents are POSTed to ``url``, signed with ``secret``."""

    __tablename__ = "webhook_endpoints"
    endpoint_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    seller_id: Mapped[str] = mapped_column(ForeignKey("sellers.seller_id"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    # The signing secret must be readable to sign with (as Stripe's): shown once, kept here.
    secret: Mapped[str] = mapped_column(String(100))
    idempotency_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    __table_args__ = (
        Index(
            "uq_webhook_endpoints_seller_idempotency_key",
            "seller_id",
            "idempotency_key",
            unique=True,
            postgresql_where=text("idempotency_key IS NOT NULL"),
        ),
    )


class SellerNotice(Base):
    """One recall's notice to one seller of listings it reaches (stop_sales.v1)."""

    __tablename__ = "seller_notices"
    notice_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    recall_id: Mapped[str] = mapped_column(String(64), index=True)
    seller_id: Mapped[str] = mapped_column(String(100), index=True)
    recall_version: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(Text, default="")
    severity: Mapped[str] = mapped_column(String(20))
    product_ids: Mapped[list[str]] = mapped_column(ARRAY(String(100)), default=list)
    status: Mapped[str] = mapped_column(String(30))  # domain.NoticeStatus
    notified_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ack_due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    acknowledged_by: Mapped[str | None] = mapped_column(String(36), nullable=True)
    removal_confirmed_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True
    )
    units_removed: Mapped[int | None] = mapped_column(Integer, nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    note: Mapped[str] = mapped_column(Text, default="")
    email_status: Mapped[str] = mapped_column(String(20))  # pending | sent | no_contact | failed
    email_attempts: Mapped[int] = mapped_column(Integer, default=0)
    email_next_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    email_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Told again (seller_notices.SellerNotices): how many times, and which listings the latest
    # update added; listings a lift made sellable again (a new stop of one is news again).
    updates: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    added_product_ids: Mapped[list[str]] = mapped_column(
        ARRAY(String(100)), default=list, server_default="{}"
    )
    lifted_product_ids: Mapped[list[str]] = mapped_column(
        ARRAY(String(100)), default=list, server_default="{}"
    )

    __table_args__ = (
        Index("uq_seller_notices_recall_seller", "recall_id", "seller_id", unique=True),
        Index("ix_seller_notices_notified", "notified_at", "notice_id"),
    )


class WebhookDelivery(Base):
    """One event for one endpoint, tried until delivered or out of attempts."""

    __tablename__ = "webhook_deliveries"
    delivery_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("webhook_endpoints.endpoint_id"))
    seller_id: Mapped[str] = mapped_column(String(100), index=True)
    event_type: Mapped[str] = mapped_column(String(60))
    payload: Mapped[dict] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(String(20))  # pending | delivered | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    __table_args__ = (
        Index(
            "ix_webhook_deliveries_due",
            "next_attempt_at",
            postgresql_where=text("status = 'pending'"),
        ),
        Index("ix_webhook_deliveries_created", "created_at", "delivery_id"),
    )


class WebhookAttempt(Base):
    """The delivery log: every try, with what the endpoint answered."""

    __tablename__ = "webhook_attempts"
    delivery_id: Mapped[str] = mapped_column(
        ForeignKey("webhook_deliveries.delivery_id"), primary_key=True
    )
    attempt: Mapped[int] = mapped_column(Integer, primary_key=True)
    attempted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    duration_ms: Mapped[int] = mapped_column(Integer)


class SaleIncident(Base):
    """A sale after a recall (alert.sale_after_recall_detected.v1), in the operators' queue."""

    __tablename__ = "sale_incidents"
    incident_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    recall_id: Mapped[str] = mapped_column(String(64), index=True)
    seller_id: Mapped[str] = mapped_column(String(100), index=True)
    product_id: Mapped[str] = mapped_column(String(100))
    order_id: Mapped[str] = mapped_column(String(100))
    line_id: Mapped[str] = mapped_column(String(100))
    placed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    recall_published_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(20))  # open | resolved
    resolution: Mapped[str] = mapped_column(Text, default="")
    detected_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    __table_args__ = (Index("ix_sale_incidents_detected", "detected_at", "incident_id"),)


class ComplianceLetter(Base):
    """A seller's Letter of Compliance: the stock it offers of one listing of a recall from now on
    (made after a date, of new lots, serial ranges, best before a later day), for an operator to
    accept or reject, and to withdraw once accepted."""

    __tablename__ = "compliance_letters"
    letter_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    recall_id: Mapped[str] = mapped_column(ForeignKey("recalls.recall_id"), index=True)
    seller_id: Mapped[str] = mapped_column(ForeignKey("sellers.seller_id"), index=True)
    product_id: Mapped[str] = mapped_column(String(100))
    made_after: Mapped[date | None] = mapped_column(Date, nullable=True)
    lots: Mapped[list[str]] = mapped_column(ARRAY(String(200)), default=list)
    serials: Mapped[list] = mapped_column(
        JSONB, default=list, server_default=text("'[]'::jsonb")
    )  # [{"first", "last"}]
    best_before_after: Mapped[date | None] = mapped_column(Date, nullable=True)
    statement: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(20))  # domain.LetterStatus
    idempotency_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    request_fingerprint: Mapped[str] = mapped_column(String(64))
    submitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(36), nullable=True)
    decision_note: Mapped[str] = mapped_column(Text, default="")

    __table_args__ = (
        Index(
            "uq_compliance_letters_seller_idempotency_key",
            "seller_id",
            "idempotency_key",
            unique=True,
            postgresql_where=text("idempotency_key IS NOT NULL"),
        ),
        Index("ix_compliance_letters_submitted", "submitted_at", "letter_id"),
    )


class ScreeningCandidate(Base):
    """A listing the catalog screening found for a draft (domain.screen_listing), for an operator to
    confirm (it joins the scope at publication) or dismiss."""

    __tablename__ = "screening_candidates"
    candidate_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    recall_id: Mapped[str] = mapped_column(ForeignKey("recalls.recall_id"), index=True)
    product_id: Mapped[str] = mapped_column(String(100))
    title: Mapped[str] = mapped_column(Text, default="")
    seller_ids: Mapped[list[str]] = mapped_column(ARRAY(String(100)), default=list)
    confidence: Mapped[float] = mapped_column(Float)
    reasons: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)
    status: Mapped[str] = mapped_column(String(20))  # pending | confirmed | dismissed
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(36), nullable=True)

    __table_args__ = (
        Index("uq_screening_candidates_recall_product", "recall_id", "product_id", unique=True),
        Index("ix_screening_candidates_created", "created_at", "candidate_id"),
    )


metadata = Base.metadata
