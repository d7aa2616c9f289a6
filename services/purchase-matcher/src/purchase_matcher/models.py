"""purchase-matcher's tables: the purchase index, active recall scopes, alerts, and seller API
keys."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Identity,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from recall_shared.api_keys import SellerKeyColumns
from recall_shared.db import new_metadata


class Base(DeclarativeBase):
    metadata = new_metadata()


class PurchaseLine(Base):
    """One order line as the matcher needs it; units = quantity - returned, none when cancelled."""

    __tablename__ = "purchase_lines"
    line_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(100))
    customer_id: Mapped[str] = mapped_column(String(100))
    product_id: Mapped[str] = mapped_column(String(100))
    title: Mapped[str] = mapped_column(Text, default="")
    gtin: Mapped[str | None] = mapped_column(String(14), nullable=True)
    model_number: Mapped[str | None] = mapped_column(String(200), nullable=True)
    model_key: Mapped[str | None] = mapped_column(
        String(200), nullable=True
    )  # normalised model number
    seller_id: Mapped[str] = mapped_column(String(100))
    quantity: Mapped[int] = mapped_column(Integer)
    returned_quantity: Mapped[int] = mapped_column(Integer, default=0)
    cancelled: Mapped[bool] = mapped_column(Boolean, default=False)
    unit_price: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    currency: Mapped[str] = mapped_column(String(3))
    lot: Mapped[str | None] = mapped_column(String(200), nullable=True)
    serial: Mapped[str | None] = mapped_column(String(200), nullable=True)
    placed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    manufactured_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    best_before: Mapped[date | None] = mapped_column(Date, nullable=True)
    expires_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    business_account_admin_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    # The order's gift flag and recipient (events.GiftRecipient as JSON text), carried to alerts.
    is_gift: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    gift_recipient: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Placed from orders.v1 and not shipped yet: what a recall holds (shipment_holds). Lines
    # indexed before this column, and backfilled history, count as shipped.
    awaiting_shipment: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")

    __table_args__ = (
        Index("ix_purchase_lines_product", "product_id"),
        Index("ix_purchase_lines_gtin", "gtin"),
        Index("ix_purchase_lines_model_key", "model_key"),
        Index("ix_purchase_lines_customer", "customer_id"),
        # Small: only lines awaiting shipment (holds look them up by identifier).
        *(
            Index(
                f"ix_purchase_lines_unshipped_{column}",
                column,
                postgresql_where=text("awaiting_shipment"),
            )
            for column in ("product_id", "gtin", "model_key")
        ),
    )


class ActiveRecall(Base):
    """The latest version of every recall seen, with its full scope."""

    __tablename__ = "recalls"
    recall_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20))  # active | closed
    snapshot: Mapped[dict] = mapped_column(JSONB)
    published_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class RecallIdentifier(Base):
    """The identifiers each active recall names (product ids, GTIN-14s, model keys): an order event
    finds the recalls that could reach its lines through this index instead of reading every active
    recall."""

    __tablename__ = "recall_identifiers"
    kind: Mapped[str] = mapped_column(String(10), primary_key=True)  # product | gtin | model
    value: Mapped[str] = mapped_column(String(200), primary_key=True)
    recall_id: Mapped[str] = mapped_column(String(64), primary_key=True)

    __table_args__ = (Index("ix_recall_identifiers_recall_id", "recall_id"),)


class Alert(Base):
    """One alert per (customer, recall): what was last announced about it, enough to tell a change.

    The full state goes out on alerts.v1 and is not kept here (a recall can reach a million
    customers)."""

    __tablename__ = "alerts"
    # Keyed the way reconcile writes (a recall's customers in order); alert_id is derived from the
    # pair.
    recall_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    alert_id: Mapped[str] = mapped_column(String(36))
    recall_version: Mapped[int] = mapped_column(Integer)
    alert_version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20))  # open | withdrawn | closed
    tier: Mapped[str] = mapped_column(String(20))
    fingerprint: Mapped[str] = mapped_column(
        String(64)
    )  # of tier, lines and units: what a change means
    line_count: Mapped[int] = mapped_column(Integer)  # affected order lines
    units: Mapped[int] = mapped_column(Integer)  # affected units still with the customer
    reconcile_pass: Mapped[str | None] = mapped_column(
        String(36), nullable=True
    )  # the last pass that confirmed it
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (Index("ix_alerts_customer_id", "customer_id"),)


class AlertAnnouncement(Base):
    """New alerts a reconcile pass is about to send straight to alerts.v1, one row per batch of
    customers, committed on a connection of its own before the batch goes out (their alert rows
    commit only after every acknowledgement). An entry whose (recall, customer) has no alert row is
    an alert consumers may hold that the database does not: the next pass of that recall or customer
    brings them in line (domain.catch_up). A whole-recall pass deletes its recall's rows as it
    commits; a re-check its own."""

    __tablename__ = "alert_announcements"
    announcement_id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    recall_id: Mapped[str] = mapped_column(String(64))
    recall_version: Mapped[int] = mapped_column(Integer)
    pass_id: Mapped[str] = mapped_column(String(36))
    # One entry per customer, in the same order: what its alert version 1 said. Packed (a
    # fingerprint as its 32 bytes, a tier as one letter, c or p) so that announcing costs the fast
    # path little.
    customer_ids: Mapped[list[str]] = mapped_column(ARRAY(Text))
    fingerprints: Mapped[bytes] = mapped_column(LargeBinary)
    tiers: Mapped[str] = mapped_column(Text)
    announced_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )

    __table_args__ = (Index("ix_alert_announcements_recall_id", "recall_id"),)


class LabelConfirmation(Base):
    """What a customer last read on the label when customer-api's check confirmed their alert
    (remedies.v1, ``remedy.label_confirmed.v1``): every pass of the recall for that customer takes
    it as known (domain.labelled_reach), so an amendment or a re-check keeps the upgrade."""

    __tablename__ = "label_confirmations"
    recall_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    alert_id: Mapped[str] = mapped_column(String(36))
    lot: Mapped[str | None] = mapped_column(String(200), nullable=True)
    serial: Mapped[str | None] = mapped_column(String(200), nullable=True)
    manufactured_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    best_before: Mapped[date | None] = mapped_column(Date, nullable=True)
    expires_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    confirmed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class BackfillCursor(Base):
    """Where an HTTP backfill stopped, saved with each page's effects so a restart resumes there."""

    __tablename__ = "backfill_cursors"
    source: Mapped[str] = mapped_column(Text, primary_key=True)
    cursor: Mapped[str | None] = mapped_column(Text, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class CatalogListing(Base):
    """Read model of catalog.listings.v1: which sellers list which products (with their GTIN-14s,
    model keys and parent). Stop-sales are worked out against it."""

    __tablename__ = "catalog_listings"
    product_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    parent_product_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    gtins: Mapped[list[str]] = mapped_column(ARRAY(Text))
    model_keys: Mapped[list[str]] = mapped_column(ARRAY(Text))
    seller_ids: Mapped[list[str]] = mapped_column(ARRAY(Text))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ix_catalog_listings_parent", "parent_product_id"),
        Index("ix_catalog_listings_gtins", "gtins", postgresql_using="gin"),
        Index("ix_catalog_listings_model_keys", "model_keys", postgresql_using="gin"),
    )


class StopSale(Base):
    """What stop_sales.v1 last said about one recall and one seller's listing of a product."""

    __tablename__ = "stop_sales"
    recall_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    product_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    seller_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    recall_version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20))  # declared | lifted
    tier: Mapped[str] = mapped_column(String(20))
    unknown_attributes: Mapped[list[str]] = mapped_column(ARRAY(Text))
    transitions: Mapped[int] = mapped_column(Integer)  # events sent: part of the next event's id
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (Index("ix_stop_sales_product_id", "product_id"),)


class StopSaleClearance(Base):
    """An accepted Letter of Compliance (compliance_letters.v1): the stock one seller offers of one
    listing from now on, which the recall's scope may leave out (domain.letter_clears)."""

    __tablename__ = "stop_sale_clearances"
    recall_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    product_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    seller_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    letter_id: Mapped[str] = mapped_column(String(64))
    made_after: Mapped[date | None] = mapped_column(Date, nullable=True)
    lots: Mapped[list[str]] = mapped_column(ARRAY(Text))
    # [{"first", "last"}] ranges, and a day every unit is best before a later one (letters by serial
    # range or best-before date)
    serials: Mapped[list] = mapped_column(JSONB, default=list, server_default=text("'[]'::jsonb"))
    best_before_after: Mapped[date | None] = mapped_column(Date, nullable=True)
    accepted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ShipmentHold(Base):
    """What shipment_holds.v1 last said about one recall and one order line."""

    __tablename__ = "shipment_holds"
    recall_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    line_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(100))
    customer_id: Mapped[str] = mapped_column(String(100))
    recall_version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20))  # held | released
    tier: Mapped[str] = mapped_column(String(20))
    unknown_attributes: Mapped[list[str]] = mapped_column(ARRAY(Text))
    transitions: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (Index("ix_shipment_holds_line_id", "line_id"),)


class SellerKey(SellerKeyColumns, Base):
    """Read model of sellers.v1: API key hashes (HMAC under the system-wide pepper), never
    plaintext; they authenticate the read API (recall_shared.api_keys)."""


metadata = Base.metadata
