"""notifier's tables: customer contacts, the alerts it was told about, and notices."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    Boolean,
    DateTime,
    Index,
    Integer,
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


class Contact(Base):
    __tablename__ = "contacts"
    customer_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    name: Mapped[str] = mapped_column(Text, default="")
    email: Mapped[str | None] = mapped_column(String(320), nullable=True)
    safety_email: Mapped[str | None] = mapped_column(String(320), nullable=True)
    phone: Mapped[str | None] = mapped_column(String(20), nullable=True)  # E.164
    sms_opt_out: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    # customers.v1's postal address (recall_shared.events.PostalAddress), for letters
    postal_address: Mapped[dict | None] = mapped_column(JSONB(none_as_null=True), nullable=True)
    letter_opt_out: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    # A letter to postal_address came back undeliverable (notifier.letter_returns): no more
    # letters there until the address changes.
    postal_undeliverable_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True
    )
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
    """One notice to one recipient; unique per (alert, kind, alert version, recipient, reminder
    number).

    Status: waiting_contact -> pending -> sending -> sent | failed | in_doubt; or cancelled. A sent
    notice's ``delivery`` then follows what is reported back: delivered | bounced | complained (a
    soft bounce with re-sends left puts it back to pending).
    ``sending`` is committed before the SMTP transaction begins, with the deterministic Message-ID:
    a 'sending' notice whose lease expired belongs to a sender that died mid-send, and the mail may
    or may not have reached the relay (see ``Settings.delivery_guarantee``)."""

    __tablename__ = "notices"
    notice_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    alert_id: Mapped[str] = mapped_column(String(36))
    customer_id: Mapped[str] = mapped_column(String(100))
    recipient_customer_id: Mapped[str] = mapped_column(String(100))
    recipient_role: Mapped[str] = mapped_column(String(20))  # purchaser | account_admin
    kind: Mapped[str] = mapped_column(String(20))  # initial | update | withdrawal | reminder
    # email, or sms / letter: a fallback notice of the same (alert, kind, version, recipient), own
    # row and id
    channel: Mapped[str] = mapped_column(String(10), default="email", server_default="email")
    alert_version: Mapped[int] = mapped_column(Integer)
    reminder_no: Mapped[int] = mapped_column(
        Integer, default=0, server_default="0"
    )  # 1, 2, ... for kind reminder
    status: Mapped[str] = mapped_column(
        String(20)
    )  # waiting_contact | pending | sending | sent | failed | in_doubt | cancelled
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    sent_to: Mapped[str | None] = mapped_column(String(320), nullable=True)
    message_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    sending_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    resent_in_doubt: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # What became of it once sent (notifier.domain.apply_report): delivered | bounced |
    # complained, or NULL while nothing was reported.
    delivery: Mapped[str | None] = mapped_column(String(20), nullable=True)
    bounce_type: Mapped[str | None] = mapped_column(String(10), nullable=True)  # hard | soft
    delivery_status: Mapped[str | None] = mapped_column(String(20), nullable=True)  # e.g. 5.1.1
    delivery_detail: Mapped[str | None] = mapped_column(Text, nullable=True)
    delivery_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    soft_bounces: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The fall back after N days (unconfirmed.py) has dealt with this sent notice.
    followed_up: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    # The W3C trace context of the event that queued it, or of the notice a fallback or reminder
    # follows (notifier.notice_traces): its send is a span of that trace (the recall's, or a remedy
    # case's). NULL without one (tracing off upstream).
    traceparent: Mapped[str | None] = mapped_column(Text, nullable=True)
    tracestate: Mapped[str | None] = mapped_column(Text, nullable=True)
    # A letter's id in its batch's manifest (letter notices), which a mail house's return file
    # names (notifier.letter_returns).
    letter_id: Mapped[str | None] = mapped_column(String(100), nullable=True)

    __table_args__ = (
        UniqueConstraint(
            "alert_id",
            "kind",
            "alert_version",
            "recipient_customer_id",
            "reminder_no",
            "channel",
            name="uq_notices_alert_kind_version_recipient_reminder_channel",
        ),
        Index(
            "ix_notices_due",
            "next_attempt_at",
            postgresql_where=text("status IN ('pending', 'sending')"),
        ),
        Index(
            "ix_notices_waiting",
            "recipient_customer_id",
            postgresql_where=text("status = 'waiting_contact'"),
        ),
        Index(
            "ix_notices_letter_id",
            "letter_id",
            postgresql_where=text("letter_id IS NOT NULL"),
        ),
        Index(
            "ix_notices_letters_queued",
            "created_at",
            postgresql_where=text("channel = 'letter' AND status IN ('pending', 'sending')"),
        ),
        Index(
            "ix_notices_unconfirmed",
            "sent_at",
            postgresql_where=text(
                "status = 'sent' AND delivery IS NULL AND NOT followed_up AND channel <> 'letter'"
            ),
        ),
        Index(
            "ix_notices_unreachable",
            "recipient_customer_id",
            postgresql_where=text(
                "status IN ('waiting_contact', 'failed') OR delivery = 'bounced'"
            ),
        ),
    )


class Reminder(Base):
    """The reminder schedule of one recipient of one alert, from the moment its initial notice was
    sent.

    ``next_due_at`` is NULL once the last reminder is queued or reminders were stopped
    (``stopped_reason``)."""

    __tablename__ = "reminders"
    alert_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    recipient_customer_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(100))
    recipient_role: Mapped[str] = mapped_column(String(20))
    base_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    next_no: Mapped[int] = mapped_column(Integer, default=1)
    next_due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    stopped_reason: Mapped[str | None] = mapped_column(String(40), nullable=True)

    __table_args__ = (
        Index("ix_reminders_due", "next_due_at", postgresql_where=text("next_due_at IS NOT NULL")),
    )


class AlertResponse(Base):
    """The customer acted on an alert (remedy requested, a remedy case, 'not affected'): no more
    reminders. Kept apart from ``alerts`` because remedies.v1 and alerts.v1 are not ordered with
    each other."""

    __tablename__ = "alert_responses"
    alert_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(100))
    response: Mapped[str] = mapped_column(
        String(40)
    )  # remedy_requested | remedy_case | not_affected
    responded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AlertView(Base):
    """The recipient opened the alert page at this version (alert.viewed.v1 from customer-api,
    views.py): in the "not opened after N days" fall back it counts like an answer. Kept apart
    from ``alerts``, like the answers, because alert_views.v1 and alerts.v1 are not ordered."""

    __tablename__ = "alert_views"
    alert_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    alert_version: Mapped[int] = mapped_column(Integer, primary_key=True)
    viewed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CaseReminder(Base):
    """The remedy reminder schedule of one case (remedy_reminders.py): what the case waits for from
    the customer (proof | item) since when; ``next_due_at`` is NULL while paused or once stopped
    (``stopped_reason``)."""

    __tablename__ = "case_reminders"
    case_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    alert_id: Mapped[str] = mapped_column(String(36), index=True)
    customer_id: Mapped[str] = mapped_column(String(100))
    wait: Mapped[str | None] = mapped_column(String(20), nullable=True)
    since: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    next_no: Mapped[int] = mapped_column(Integer, default=1)
    next_due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    stopped_reason: Mapped[str | None] = mapped_column(String(60), nullable=True)
    queued: Mapped[int] = mapped_column(
        Integer, default=0, server_default="0"
    )  # remedy reminders queued over the case's life (their numbers)

    __table_args__ = (
        Index(
            "ix_case_reminders_due", "next_due_at", postgresql_where=text("next_due_at IS NOT NULL")
        ),
    )


class RemedyNoticeDetail(Base):
    """What a remedy notice tells (remedy_notices.py), beside its row in ``notices``: the case, the
    return label's link and tracking number, or the amount refunded."""

    __tablename__ = "remedy_notices"
    notice_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    case_id: Mapped[str] = mapped_column(String(36))
    remedy: Mapped[str] = mapped_column(String(40))
    label_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    tracking_number: Mapped[str | None] = mapped_column(String(200), nullable=True)
    amount: Mapped[Decimal | None] = mapped_column(Numeric(14, 2), nullable=True)
    currency: Mapped[str | None] = mapped_column(String(3), nullable=True)


class SellerKey(SellerKeyColumns, Base):
    """Read model of sellers.v1: API key hashes (HMAC under the system-wide pepper), never
    plaintext; an operator key authenticates the read API (recall_shared.api_keys)."""


metadata = Base.metadata
