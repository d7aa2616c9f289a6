"""notifier's tables: customer contacts, the alerts it was told about, and notices."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Index, Integer, String, Text, UniqueConstraint, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from recall_shared.db import new_metadata


class Base(DeclarativeBase):
    metadata = new_metadata()


class Contact(Base):
    __tablename__ = "contacts"
    customer_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    name: Mapped[str] = mapped_column(Text, default="")
    email: Mapped[str | None] = mapped_column(String(320), nullable=True)
    safety_email: Mapped[str | None] = mapped_column(String(320), nullable=True)
    locale: Mapped[str] = mapped_column(String(10), default="en")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class KnownAlert(Base):
    """The latest state of each alert, which notices are rendered from."""

    __tablename__ = "alerts"
    alert_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(100), index=True)
    alert_version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20))  # open | withdrawn | closed | resolved
    state: Mapped[dict] = mapped_column(JSONB)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Notice(Base):
    """One notice to one recipient; unique per (alert, kind, alert version, recipient)."""

    __tablename__ = "notices"
    notice_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    alert_id: Mapped[str] = mapped_column(String(36))
    customer_id: Mapped[str] = mapped_column(String(100))
    recipient_customer_id: Mapped[str] = mapped_column(String(100))
    recipient_role: Mapped[str] = mapped_column(String(20))  # purchaser | account_admin
    kind: Mapped[str] = mapped_column(String(20))  # initial | update | withdrawal | reminder
    alert_version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20))  # waiting_contact | pending | sent | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    sent_to: Mapped[str | None] = mapped_column(String(320), nullable=True)
    message_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    __table_args__ = (
        UniqueConstraint("alert_id", "kind", "alert_version", "recipient_customer_id"),
        Index("ix_notices_due", "next_attempt_at", postgresql_where=text("status = 'pending'")),
        Index("ix_notices_waiting", "recipient_customer_id", postgresql_where=text("status = 'waiting_contact'")),
    )


metadata = Base.metadata
