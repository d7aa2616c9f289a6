"""customer-api's read model: each customer's alerts, their notices and remedy requests."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    false,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from recall_shared.db import new_metadata


class Base(DeclarativeBase):
    metadata = new_metadata()


class CustomerAlert(Base):
    __tablename__ = "alerts"
    alert_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(100))
    recall_id: Mapped[str] = mapped_column(String(64))
    alert_version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20))  # open | withdrawn | closed
    resolution: Mapped[str | None] = mapped_column(
        String(30), nullable=True
    )  # not_affected | remedied
    severity_rank: Mapped[int] = mapped_column(
        Integer
    )  # 0 critical .. 3 low, for "most severe first"
    state: Mapped[dict] = mapped_column(JSONB)
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    not_affected_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        Index("ix_alerts_customer_status", "customer_id", "status", "severity_rank", "created_at"),
    )


class RemedyRequest(Base):
    __tablename__ = "remedy_requests"
    request_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    alert_id: Mapped[str] = mapped_column(String(36), unique=True)  # one remedy per alert
    customer_id: Mapped[str] = mapped_column(String(100))
    remedy: Mapped[str] = mapped_column(String(40))
    idempotency_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    case_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    case_state: Mapped[str] = mapped_column(String(30), default="requested")
    refunded_amount: Mapped[Decimal] = mapped_column(Numeric(14, 2), default=Decimal("0"))
    currency: Mapped[str | None] = mapped_column(String(3), nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    requested_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # What the case page shows (remedies.v1, issue 14): what the case waits for, the return label,
    # and the case's timeline ({"step", "at", "attempt"?}, oldest first; case_progress.py).
    waiting_for: Mapped[str | None] = mapped_column(String(30), nullable=True)
    label_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    label_tracking_number: Mapped[str | None] = mapped_column(String(200), nullable=True)
    timeline: Mapped[list] = mapped_column(JSONB, default=list, server_default=text("'[]'::jsonb"))

    __table_args__ = (UniqueConstraint("customer_id", "idempotency_key"),)


class SentNotice(Base):
    __tablename__ = "notices"
    notice_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    alert_id: Mapped[str] = mapped_column(String(36), index=True)
    customer_id: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(10))  # sent | failed
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Sent to the recipient of a gift on the purchaser's behalf, not to the purchaser.
    gift_recipient: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


metadata = Base.metadata


class PublicRecall(Base):
    """A published recall as anyone may read it (the public pages): its latest snapshot from
    recalls.v1, nothing of any customer."""

    __tablename__ = "public_recalls"
    recall_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20))  # active | closed | withdrawn
    snapshot: Mapped[dict] = mapped_column(JSONB)  # RecallSnapshot
    published_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    close_reason: Mapped[str] = mapped_column(Text, default="", server_default="")

    __table_args__ = (Index("ix_public_recalls_published", "published_at"),)


class LabelCheck(Base):
    """One "am I affected?" answer a customer got for their alert: what they typed from the label
    and what the recall's rules said (confirmed | not_affected | cannot_tell)."""

    __tablename__ = "label_checks"
    check_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    alert_id: Mapped[str] = mapped_column(String(36))
    customer_id: Mapped[str] = mapped_column(String(100))
    alert_version: Mapped[int] = mapped_column(Integer)
    answer: Mapped[str] = mapped_column(String(20))
    lot: Mapped[str | None] = mapped_column(String(200), nullable=True)
    serial: Mapped[str | None] = mapped_column(String(200), nullable=True)
    manufactured_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    best_before: Mapped[date | None] = mapped_column(Date, nullable=True)
    expires_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    checked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_label_checks_alert_id", "alert_id", "checked_at"),)


class AlertView(Base):
    """The customer's first view of one version of their alert page (views.py): one row per
    (alert, version), written with its alert.viewed.v1 in the outbox."""

    __tablename__ = "alert_views"
    alert_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    alert_version: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(100))
    viewed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
