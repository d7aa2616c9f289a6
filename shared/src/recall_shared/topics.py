"""The topic catalog: every topic the system uses, its key, partitions, retention and events.

Topics are created by an explicit bootstrap step (``create-topics``), never by broker auto-create,
with the replication factor and ``min.insync.replicas`` of the settings
(``RECALL_ALERTS_TOPIC_REPLICATION_FACTOR``, ``RECALL_ALERTS_TOPIC_MIN_INSYNC_REPLICAS``: 1 and 1
for the single local broker, 3 and 2 on a cluster).
``RECALL_ALERTS_TOPIC_PREFIX`` prefixes every physical name, so test runs or tenants can share a
cluster.
"""

from __future__ import annotations

from dataclasses import dataclass

from recall_shared import events as ev

DAY_MS = 24 * 60 * 60 * 1000


@dataclass(frozen=True)
class TopicSpec:
    name: str
    key: str
    partitions: int
    owner: str
    description: str
    event_types: tuple[type[ev.Event], ...]
    compacted: bool = False
    retention_ms: int | None = None  # None: the broker's default

    def physical(self, prefix: str = "") -> str:
        return f"{prefix}{self.name}"

    def config(self, min_insync_replicas: int = 1) -> dict[str, str]:
        """The topic's configuration at creation; ``min_insync_replicas`` comes from the settings
        (the cluster's size, not the topic's nature), like the replication factor."""
        cfg: dict[str, str] = {"min.insync.replicas": str(min_insync_replicas)}
        if self.compacted:
            cfg["cleanup.policy"] = "compact"
        if self.retention_ms is not None:
            cfg["retention.ms"] = str(self.retention_ms)
        return cfg


RECALLS = TopicSpec(
    "recalls.v1",
    "recall id",
    3,
    "recall-intake",
    "Published, amended and closed recalls, each carrying the full versioned recall and scope.",
    (ev.RecallPublished, ev.RecallAmended, ev.RecallClosed),
    retention_ms=-1,
)
ORDERS = TopicSpec(
    "orders.v1",
    "customer id",
    6,
    "order-history (upstream)",
    "Orders placed, lines shipped (lot/serial learnt), cancelled, returned or refunded.",
    (ev.OrderPlaced, ev.OrderLineShipped, ev.OrderCancelled, ev.OrderLineReturned),
    retention_ms=30 * DAY_MS,
)
CATALOG_LISTINGS = TopicSpec(
    "catalog.listings.v1",
    "product id",
    3,
    "catalog (upstream)",
    "Listings: title, brand, GTINs, model numbers, variants, image, sellers offering it.",
    (ev.ListingUpdated,),
    compacted=True,
)
CUSTOMERS = TopicSpec(
    "customers.v1",
    "customer id",
    3,
    "accounts (upstream)",
    "Customer contacts: email, safety-only contact, locale, marketing preference (ignored for "
    "safety).",
    (ev.CustomerUpdated,),
    compacted=True,
)
ALERTS = TopicSpec(
    "alerts.v1",
    "customer id",
    6,
    "purchase-matcher",
    "One alert per (customer, recall): raised, updated, withdrawn, closed; sales after a recall.",
    (
        ev.AlertRaised,
        ev.AlertUpdated,
        ev.AlertWithdrawn,
        ev.AlertClosed,
        ev.SaleAfterRecallDetected,
    ),
    retention_ms=-1,
)
NOTIFICATIONS = TopicSpec(
    "notifications.v1",
    "customer id",
    3,
    "notifier",
    "Notices sent and failed, per alert, kind and alert version; then delivered, bounced or "
    "complained about, as reported back.",
    (
        ev.NoticeSent,
        ev.NoticeFailed,
        ev.NoticeSmsSent,
        ev.NoticeLetterSent,
        ev.NoticeLetterReturned,
        ev.NoticeDelivered,
        ev.NoticeBounced,
        ev.NoticeComplained,
        ev.RemedyNoticeStatus,
    ),
    retention_ms=90 * DAY_MS,
)
REMEDIES = TopicSpec(
    "remedies.v1",
    "customer id",
    3,
    "customer-api (requests), refund-logistics (cases)",
    "Remedy requests, 'not affected' answers and label confirmations from customers; every "
    "remedy case transition and proof review step.",
    (
        ev.RemedyRequested,
        ev.NotAffectedDeclared,
        ev.RemedyCaseTransitioned,
        ev.RemedyCaseProgressed,
        ev.LabelConfirmed,
    ),
    retention_ms=-1,
)
ALERT_VIEWS = TopicSpec(
    "alert_views.v1",
    "customer id",
    3,
    "customer-api",
    "A customer's first view of each version of their alert page (first-party, no tracking "
    "pixel), for the notifier's 'not opened after N days' fall back. Not a response to the "
    "alert, so not on remedies.v1; kept 30 days, as long as the fall back needs it.",
    (ev.AlertViewed,),
    retention_ms=30 * DAY_MS,
)

SELLERS = TopicSpec(
    "sellers.v1",
    "key id",
    3,
    "recall-intake",
    "Seller and operator API keys issued and revoked (HMAC hashes only), for services that "
    "authenticate sellers.",
    (ev.ApiKeyIssued, ev.ApiKeyRevoked),
    compacted=True,
)
STOP_SALES = TopicSpec(
    "stop_sales.v1",
    "product id",
    3,
    "purchase-matcher",
    "Stop-sales of listings (product, seller) a recall reaches, declared and lifted, for the "
    "catalog to suppress and reinstate them.",
    (ev.StopSaleDeclared, ev.StopSaleLifted),
    retention_ms=-1,
)
SHIPMENT_HOLDS = TopicSpec(
    "shipment_holds.v1",
    "order id",
    3,
    "purchase-matcher",
    "Holds of order lines placed but not shipped that a recall reaches, declared and released, "
    "for fulfilment.",
    (ev.ShipmentHoldDeclared, ev.ShipmentHoldReleased),
    retention_ms=-1,
)
COMPLIANCE_LETTERS = TopicSpec(
    "compliance_letters.v1",
    "recall id",
    3,
    "recall-intake",
    "Letters of Compliance an operator accepted: a seller's corrected scope for one listing of a "
    "recall (made after a date, new lots, serial ranges, best before a later day), for stop-sales "
    "to reinstate what it no longer covers; and accepted letters withdrawn (stopped again).",
    (ev.ComplianceLetterAccepted, ev.ComplianceLetterWithdrawn),
    retention_ms=-1,
)

CATALOG: tuple[TopicSpec, ...] = (
    RECALLS,
    ORDERS,
    CATALOG_LISTINGS,
    CUSTOMERS,
    ALERTS,
    NOTIFICATIONS,
    REMEDIES,
    ALERT_VIEWS,
    SELLERS,
    STOP_SALES,
    SHIPMENT_HOLDS,
    COMPLIANCE_LETTERS,
)
TOPICS_BY_NAME = {t.name: t for t in CATALOG}

SERVICES = ("recall-intake", "purchase-matcher", "notifier", "refund-logistics", "customer-api")


def dead_letter_topic(service: str) -> TopicSpec:
    """One dead-letter topic per consuming service, so a redrive goes back to that service alone."""
    return TopicSpec(
        f"deadletter.{service}.v1",
        "original key",
        1,
        service,
        f"Messages {service} could not decode, validate or process; origin and error in headers.",
        (),
        retention_ms=30 * DAY_MS,
    )


def all_topics() -> tuple[TopicSpec, ...]:
    return CATALOG + tuple(dead_letter_topic(s) for s in SERVICES)


def topic_of(event_type: type[ev.Event]) -> TopicSpec:
    return TOPICS_BY_NAME[event_type.topic]
