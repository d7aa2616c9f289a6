"""refund-logistics' tables: read models of recalls and alerts, cases, refunds and the seller
ledger."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from recall_shared.api_keys import SellerKeyColumns
from recall_shared.db import new_metadata


class Base(DeclarativeBase):
    metadata = new_metadata()


class KnownRecall(Base):
    __tablename__ = "recalls"
    recall_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    seller_id: Mapped[str | None] = mapped_column(String(100), nullable=True, index=True)
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20))  # active | closed
    logistics_enrolled: Mapped[bool] = mapped_column(
        Boolean
    )  # as published; see Enrolment for the override
    consumer_contact: Mapped[str] = mapped_column(Text, default="")
    title: Mapped[str] = mapped_column(Text, default="", server_default="")
    regulator_number: Mapped[str | None] = mapped_column(
        String(200), nullable=True
    )  # CPSC's, when given
    # Incidents and injuries the recall states (issue 14): at its publication (before the recall)
    # and in its latest version; the report tells "before" and "since" (domain).
    incidents_at_publication: Mapped[int | None] = mapped_column(Integer, nullable=True)
    injuries_at_publication: Mapped[int | None] = mapped_column(Integer, nullable=True)
    incidents_reported: Mapped[int | None] = mapped_column(Integer, nullable=True)
    injuries_reported: Mapped[int | None] = mapped_column(Integer, nullable=True)


class KnownAlert(Base):
    __tablename__ = "alerts"
    alert_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(100))
    recall_id: Mapped[str] = mapped_column(String(64))
    alert_version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20))  # open | withdrawn | closed
    lines: Mapped[list] = mapped_column(JSONB)
    units: Mapped[int] = mapped_column(
        Integer, default=0, server_default="0"
    )  # affected units of the lines

    __table_args__ = (
        # A recall's customers in order, with what the reach gauge filters on: counted from the
        # index alone (metrics.py), not by sorting a million rows per scrape.
        Index(
            "ix_alerts_recall_id_customer_id",
            "recall_id",
            "customer_id",
            postgresql_include=["status"],
        ),
    )


class Case(Base):
    __tablename__ = "cases"
    case_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    request_id: Mapped[str] = mapped_column(String(36), unique=True)
    alert_id: Mapped[str] = mapped_column(String(36), index=True)
    customer_id: Mapped[str] = mapped_column(String(100))
    recall_id: Mapped[str] = mapped_column(String(64), index=True)
    seller_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    remedy: Mapped[str] = mapped_column(String(40))
    state: Mapped[str] = mapped_column(String(30))
    # recall | alert (not known yet), proof, item, payment, seller: what the case waits for; null
    # otherwise
    waiting_for: Mapped[str | None] = mapped_column(String(30), nullable=True)
    units: Mapped[int] = mapped_column(
        Integer, default=0, server_default="0"
    )  # affected units, once the alert is known
    refunded_amount: Mapped[Decimal] = mapped_column(Numeric(14, 2), default=Decimal("0"))
    currency: Mapped[str | None] = mapped_column(String(3), nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        Index("ix_cases_created_at_case_id", "created_at", "case_id"),
    )  # GET /v1/cases pages


class CaseTransition(Base):
    __tablename__ = "case_transitions"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.case_id"), index=True)
    transition: Mapped[str] = mapped_column(String(40))
    from_state: Mapped[str | None] = mapped_column(String(30), nullable=True)
    to_state: Mapped[str] = mapped_column(String(30))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Refund(Base):
    """One refund per (case, order line); the idempotency key makes the provider call safe to
    repeat.

    Written as an intent (``pending``) before the provider is called, settled (``paid``) after: a
    crash in between leaves a pending row that the recovery loop settles with the same key (see
    RLS.md)."""

    __tablename__ = "refunds"
    refund_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.case_id"))
    line_id: Mapped[str] = mapped_column(String(100), index=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    amount: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    currency: Mapped[str] = mapped_column(String(3))
    provider_ref: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    order_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    method: Mapped[str] = mapped_column(
        String(40), default="original_payment_method", server_default="original_payment_method"
    )
    status: Mapped[str] = mapped_column(String(20), default="pending")  # pending | paid | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    paid_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (
        UniqueConstraint("case_id", "line_id"),
        Index(
            "ix_refunds_pending", "claimed_until", postgresql_where=text("status = 'pending'")
        ),  # the recovery loop
    )


class LedgerEntry(Base):
    """What the marketplace paid on a seller's behalf, and the fees billed to it."""

    __tablename__ = "seller_ledger"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    seller_id: Mapped[str | None] = mapped_column(String(100), index=True, nullable=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.case_id"))
    kind: Mapped[str] = mapped_column(String(20))  # refund_paid | fee | label
    amount: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    currency: Mapped[str] = mapped_column(String(3))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (UniqueConstraint("case_id", "kind"),)


class SellerKey(SellerKeyColumns, Base):
    """Read model of sellers.v1: API key hashes (HMAC under the system-wide pepper), never
    plaintext."""


class Enrolment(Base):
    """A seller's (or operator's) explicit RLS enrolment of a recall; overrides the published
    flag."""

    __tablename__ = "enrolments"
    recall_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    enrolled: Mapped[bool] = mapped_column(Boolean)
    changed_by_key_id: Mapped[str] = mapped_column(String(64))
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class NotAffected(Base):
    """A customer's "my unit is not affected" answer, for the effectiveness report."""

    __tablename__ = "not_affected"
    alert_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    recall_id: Mapped[str] = mapped_column(String(64), index=True)
    declared_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    reason: Mapped[str] = mapped_column(Text, default="")


class AlertViewRecord(Base):
    """The customer first opened their alert page (alert.viewed.v1, any version), for the
    effectiveness report's "viewed" (viewed.py)."""

    __tablename__ = "alert_views"
    alert_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(100))
    recall_id: Mapped[str] = mapped_column(String(64))
    viewed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_alert_views_recall_customer", "recall_id", "customer_id"),)


class NoticeRecord(Base):
    """Read model of notifications.v1: a notice sent or failed for good, and what became of it."""

    __tablename__ = "notices"
    notice_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    alert_id: Mapped[str] = mapped_column(String(36))
    customer_id: Mapped[str] = mapped_column(String(100))
    recall_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(20))
    channel: Mapped[str] = mapped_column(String(20))
    # sent | failed, then as reported: delivered | bounced | complained (notice_states)
    status: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        # As the alerts' (the reach gauge, metrics.py).
        Index(
            "ix_notices_recall_id_customer_id",
            "recall_id",
            "customer_id",
            postgresql_include=["kind", "status"],
        ),
    )


class CaseProof(Base):
    """The customer's proof of destruction: what was received (the bytes live in
    case_proof_images)."""

    __tablename__ = "case_proofs"
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.case_id"), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    content_type: Mapped[str] = mapped_column(String(100))
    received_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    # The checks and the review (domain.ProofStatus); proofs from before reviews were accepted.
    status: Mapped[str] = mapped_column(String(20), default="accepted", server_default="accepted")
    attempt: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    width: Mapped[int | None] = mapped_column(Integer, nullable=True)
    height: Mapped[int | None] = mapped_column(Integer, nullable=True)
    flags: Mapped[list] = mapped_column(JSONB, default=list, server_default=text("'[]'::jsonb"))
    reviewed_by_key_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    rejection_reason: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (
        Index(
            "ix_case_proofs_pending_review",
            "received_at",
            postgresql_where=text("status = 'pending_review'"),
        ),  # the review queue
    )


class ProofFingerprint(Base):
    """Every photo ever received (rejected ones too), by perceptual hash: a photo reused for another
    case, by the same customer or another, is flagged. The hash is cut into bands
    (domain.hash_bands), each indexed, to find near matches without scanning."""

    __tablename__ = "proof_fingerprints"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.case_id"), index=True)
    customer_id: Mapped[str] = mapped_column(String(100))
    attempt: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    phash: Mapped[int] = mapped_column(BigInteger)  # the 64 bits, as a signed integer
    band0: Mapped[int] = mapped_column(Integer, index=True)
    band1: Mapped[int] = mapped_column(Integer, index=True)
    band2: Mapped[int] = mapped_column(Integer, index=True)
    band3: Mapped[int] = mapped_column(Integer, index=True)
    received_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )

    __table_args__ = (UniqueConstraint("case_id", "attempt"),)


class CaseProofImage(Base):
    __tablename__ = "case_proof_images"
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.case_id"), primary_key=True)
    image: Mapped[bytes] = mapped_column(LargeBinary)


class ReturnLabel(Base):
    """A prepaid return label from the carrier, one per case."""

    __tablename__ = "return_labels"
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.case_id"), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    carrier_ref: Mapped[str] = mapped_column(String(200))
    tracking_number: Mapped[str] = mapped_column(String(100))
    label_url: Mapped[str] = mapped_column(Text)
    cost: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    currency: Mapped[str] = mapped_column(String(3))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    received_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Fulfilment(Base):
    """The seller's replacement shipment or repair for a case."""

    __tablename__ = "fulfilments"
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.case_id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))  # replacement | repair
    tracking_number: Mapped[str | None] = mapped_column(String(100), nullable=True)
    note: Mapped[str] = mapped_column(Text, default="")
    by_key_id: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


metadata = Base.metadata
