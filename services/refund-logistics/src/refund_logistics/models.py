"""refund-logistics' tables: read models of recalls and alerts, cases, refunds and the seller ledger."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, Integer, Numeric, String, Text, UniqueConstraint, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from recall_shared.db import new_metadata


class Base(DeclarativeBase):
    metadata = new_metadata()


class KnownRecall(Base):
    __tablename__ = "recalls"
    recall_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    seller_id: Mapped[str | None] = mapped_column(String(100), nullable=True, index=True)
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20))  # active | closed
    logistics_enrolled: Mapped[bool] = mapped_column(Boolean)
    consumer_contact: Mapped[str] = mapped_column(Text, default="")


class KnownAlert(Base):
    __tablename__ = "alerts"
    alert_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(100))
    recall_id: Mapped[str] = mapped_column(String(64), index=True)
    alert_version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20))
    lines: Mapped[list] = mapped_column(JSONB)


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
    waiting_for: Mapped[str | None] = mapped_column(String(30), nullable=True)  # alert | recall, until known
    refunded_amount: Mapped[Decimal] = mapped_column(Numeric(14, 2), default=Decimal("0"))
    currency: Mapped[str | None] = mapped_column(String(3), nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class CaseTransition(Base):
    __tablename__ = "case_transitions"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.case_id"), index=True)
    transition: Mapped[str] = mapped_column(String(40))
    from_state: Mapped[str | None] = mapped_column(String(30), nullable=True)
    to_state: Mapped[str] = mapped_column(String(30))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Refund(Base):
    """One refund per (case, order line); the idempotency key makes the provider call safe to repeat."""

    __tablename__ = "refunds"
    refund_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.case_id"))
    line_id: Mapped[str] = mapped_column(String(100))
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    amount: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    currency: Mapped[str] = mapped_column(String(3))
    provider_ref: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (UniqueConstraint("case_id", "line_id"),)


class LedgerEntry(Base):
    """What the marketplace paid on a seller's behalf, and the fees billed to it."""

    __tablename__ = "seller_ledger"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    seller_id: Mapped[str | None] = mapped_column(String(100), index=True, nullable=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.case_id"))
    kind: Mapped[str] = mapped_column(String(20))  # refund_paid | fee
    amount: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    currency: Mapped[str] = mapped_column(String(3))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (UniqueConstraint("case_id", "kind"),)


metadata = Base.metadata
