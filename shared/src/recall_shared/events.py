"""Event contracts: one pydantic model per event type and major version.

The type string carries the major version (``recall.published.v1``). A compatible change (a new
optional field) keeps the version; a breaking one adds a new model ``...v2`` beside the old.
Consumers ignore unknown fields (``extra="ignore"``), so producers may add optional fields without
coordination. The committed JSON Schemas in ``schemas/`` are generated from these models (``make
schemas``) and a test fails when the two disagree or a change would break an existing consumer.

Every model refuses what storage cannot hold: text with NUL or a lone surrogate, integers beyond 64
bits (``recall_shared.validation``), and strings longer than their field allows (identifiers as long
as the columns that store them, every other string at most ``TEXT_MAX``). So a record carrying one
is ``invalid`` when it is decoded, never retried against a database that refuses it, and no producer
can build one.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from itertools import chain
from typing import Annotated, ClassVar, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    model_validator,
)

from recall_shared.scope import (
    Collation,
    Verdict,
    collation_key,
    combine,
    key_order,
    prefix_verdict,
    range_verdict,
    value_verdict,
)
from recall_shared.validation import INT64_MAX, INT64_MIN, find_unsafe, unsafe_text_reason

TEXT_MAX = 20_000
"""The longest string any field takes (a hazard description, say); most fields take far less."""

ID_MAX = 100
Id = Annotated[str, Field(min_length=1, max_length=ID_MAX)]
"""An identifier the platform gives (customer, seller, order, line, product), stored as
VARCHAR(100)."""
MintedId = Annotated[str, Field(min_length=1, max_length=36)]
"""An identifier this system mints (recall, alert, notice, request, case, key): a UUID's 36
characters."""
Code = Annotated[str, Field(max_length=200)]
"""A code as printed or quoted (lot, serial, model number, GTIN as written), stored as VARCHAR(200).
"""
NonEmptyCode = Annotated[str, Field(min_length=1, max_length=200)]
NonEmptyStr = Annotated[str, Field(min_length=1, max_length=500)]
Title = Annotated[str, Field(max_length=500)]
Text = Annotated[str, Field(max_length=TEXT_MAX)]
Url = Annotated[str, Field(max_length=2000)]
Email = Annotated[str, Field(max_length=320)]
Phone = Annotated[str, Field(pattern=r"^\+[1-9][0-9]{6,14}$", description="E.164")]
Locale = Annotated[str, Field(max_length=10)]

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
Int32 = Annotated[int, Field(ge=INT32_MIN, le=INT32_MAX)]
"""Versions, quantities and units are stored as PostgreSQL integers."""
Version = Annotated[int, Field(ge=1, le=INT32_MAX)]
Quantity = Annotated[int, Field(ge=1, le=INT32_MAX)]
CurrencyCode = Annotated[str, Field(pattern=r"^[A-Z]{3}$", max_length=3)]
Money = Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=2)]

RecallKind = Literal["recall", "safety_alert"]
Severity = Literal["critical", "high", "medium", "low"]
RemedyType = Literal["refund_with_return", "refund_on_destruction", "replacement", "repair"]
AlertTier = Literal["confirmed", "possibly_affected"]
NoticeKind = Literal["initial", "update", "withdrawal", "reminder"]
# The channels delivery reports speak of: "sms" added with the SMS channel (issue 15); letters have
# no reports (notification.letter_sent.v1 is all that is known of one), so no "letter" here.
NoticeChannel = Literal["email", "sms"]


def _storable(value: object) -> bool:
    """Whether storage takes ``value`` (a cheap screen; ``find_unsafe`` says where and why when it
    does not). Nested models are not entered: each checked itself when it was built."""
    if type(value) is str:
        return unsafe_text_reason(value) is None
    if type(value) is int:
        return INT64_MIN <= value <= INT64_MAX
    if type(value) is list or type(value) is tuple:
        return all(map(_storable, value))
    if type(value) is dict:
        return all(_storable(k) and _storable(v) for k, v in value.items())
    return True


SCREENED_JSON = "recall_shared.screened_json"
"""Validation context key: the JSON decoded holds nothing storage refuses (see envelope.parse)."""


class Model(BaseModel):
    """Base of every contract model: unknown fields ignored, values immutable, and nothing storage
    refuses."""

    model_config = ConfigDict(extra="ignore", frozen=True, str_max_length=TEXT_MAX)

    @model_validator(mode="after")
    def _fits_storage(self, info: ValidationInfo) -> Self:
        # One check per model rather than a validator per field: decoding stays cheap on
        # the hot paths. Skipped for JSON already screened as a whole (envelope.parse).
        if info.context is not None and info.context.get(SCREENED_JSON):
            return self
        for name, value in self.__dict__.items():
            if type(value) is str and "\x00" not in value and value.isascii():
                continue  # the common case, without a call
            if not _storable(value):
                path, reason = next(find_unsafe(value, (name,)))
                raise ValueError(f"{'.'.join(str(p) for p in path)}: {reason}")
        return self


class Event(Model):
    """Base of every event. Subclasses name their type, topic and partition key."""

    event_type: ClassVar[str]
    topic: ClassVar[str]

    def partition_key(self) -> str:
        raise NotImplementedError

    def subject(self) -> str:
        return self.partition_key()


# --------------------------------------------------------------------------- recalls.v1


class Remedy(Model):
    type: RemedyType
    instructions: Text = ""


class CodeRange(Model):
    first: NonEmptyStr
    last: NonEmptyStr


class CodeRule(Model):
    """Which lot or serial codes are affected: explicit codes, inclusive ranges and prefixes (any
    matches). Give at least one of values, ranges or prefixes; a range's first and last must be
    readable in the collation (numeric: digits) and of one shape, and first must not come after
    last (422 otherwise)."""

    values: list[NonEmptyStr] = []
    ranges: list[CodeRange] = []
    prefixes: list[NonEmptyStr] = Field(
        default=[], description='e.g. serials "beginning with 12J, 12K"'
    )
    collation: Collation = Field(
        default="natural",
        description="How ranges compare: numeric (zero-padded numbers), natural (letter runs as "
        "text, digit runs as numbers, for codes of uneven width) or exact (as written, without "
        "case, spaces, hyphens)",
    )

    @model_validator(mode="after")
    def _valid(self) -> CodeRule:
        if not (self.values or self.ranges or self.prefixes):
            raise ValueError("give at least one of values, ranges or prefixes")
        for i, r in enumerate(self.ranges):
            lo, hi = collation_key(r.first, self.collation), collation_key(r.last, self.collation)
            if lo is None or hi is None:
                bad = r.first if lo is None else r.last
                raise ValueError(
                    f"ranges[{i}]: {bad!r} cannot be read with collation {self.collation!r}"
                )
            try:
                inverted = key_order(lo, hi) > 0
            except TypeError:
                raise ValueError(
                    f"ranges[{i}]: {r.first!r} and {r.last!r} have different shapes for collation "
                    f"{self.collation!r}"
                ) from None
            if inverted:
                raise ValueError(f"ranges[{i}]: first {r.first!r} comes after last {r.last!r}")
        return self

    def verdict(self, code: str) -> Verdict:
        """``in``, ``out``, or ``unknown`` when the code cannot be compared (letters in a numeric
        rule, say): the line is then possibly affected (``recall_shared.scope``)."""
        c = self.collation
        return combine(
            chain(
                (value_verdict(code, v, c) for v in self.values),
                (prefix_verdict(code, p) for p in self.prefixes),
                (range_verdict(code, r.first, r.last, c) for r in self.ranges),
            )
        )

    def matches(self, code: str) -> bool:
        return self.verdict(code) == "in"


class DateWindow(Model):
    """An inclusive window of dates; an open end is unbounded. Give start, end or both; start must
    not be after end (422 otherwise)."""

    start: date | None = None
    end: date | None = None

    @model_validator(mode="after")
    def _valid(self) -> DateWindow:
        if self.start is None and self.end is None:
            raise ValueError("give start, end or both")
        if self.start and self.end and self.start > self.end:
            raise ValueError(f"start {self.start} is after end {self.end}")
        return self

    def contains(self, day: date) -> bool:
        return (self.start is None or self.start <= day) and (self.end is None or day <= self.end)


IDENTIFIER_LISTS = ("product_ids", "parent_product_ids", "gtins", "model_numbers")


class ScopeRule(Model):
    """One affected-product rule. The identifiers within a rule are alternatives (any one identifies
    the product); every other constraint present must hold too (AND); the rules of a recall combine
    with OR. A constraint on an attribute the order line does not know (its lot, say) makes the line
    "possibly affected"; known and outside the constraint means not affected."""

    product_ids: list[Id] = []
    parent_product_ids: list[Id] = Field(
        default=[],
        description="All variants of these products; recall-intake expands them into product_ids",
    )
    gtins: list[Annotated[str, Field(pattern=r"^\d{14}$")]] = Field(
        default=[], description="GTIN-14"
    )
    model_numbers: list[NonEmptyCode] = []
    seller_ids: list[Id] = Field(
        default=[],
        description="Only units sold by these sellers are affected; empty means any seller.",
    )
    lots: CodeRule | None = None
    serials: CodeRule | None = None
    manufactured: DateWindow | None = None
    purchased: DateWindow | None = Field(
        default=None, description="Sold or purchased in this window"
    )
    best_before: DateWindow | None = None
    expiry: DateWindow | None = None

    @model_validator(mode="after")
    def _identified(self) -> ScopeRule:
        if not (self.product_ids or self.parent_product_ids or self.gtins or self.model_numbers):
            raise ValueError(
                "a rule needs at least one identifier: product_ids, parent_product_ids, gtins or "
                "model_numbers"
            )
        return self


class RegulatorReference(Model):
    agency: Annotated[
        str, Field(min_length=2, max_length=40, description="CPSC, FDA, EU_SAFETY_GATE, ...")
    ]
    number: NonEmptyCode
    url: Url = ""
    published_on: date | None = None
    classification: str = Field(
        default="", max_length=100, description='As the regulator states it, e.g. "Class I"'
    )


class LocalizedText(Model):
    """The customer-facing texts in one more language; a missing field falls back to the main
    text."""

    title: Title = ""
    product_description: Text = ""
    hazard: Text = ""
    stop_using: Text = ""
    remedy_instructions: dict[RemedyType, Text] = {}
    consumer_contact: Text = ""
    # The notice items of issue 17 that are written in words (see RecallContent).
    identifier_location: Text = ""
    incidents: Text = ""
    sale_channels: list[Title] = []


class RecallContent(Model):
    """What a customer is told: the parts of a recall that travel with every alert."""

    kind: RecallKind = "recall"
    title: NonEmptyStr
    product_description: Text = ""
    hazard: Text
    hazard_type: str = Field(
        default="", max_length=100, description="fire, burn, choking, chemical, ..."
    )
    severity: Severity
    stop_using: Text = Field(description="The 'stop using' instruction, shown first.")
    remedies: list[Remedy]
    images: list[Url] = []
    consumer_contact: Text = ""
    units_affected: int | None = Field(default=None, ge=0, le=INT32_MAX)
    regulator_references: list[RegulatorReference] = []
    locale: str = Field(default="en", max_length=10, description="The language of the main texts")
    texts: dict[Locale, LocalizedText] = Field(
        default={}, description='Translations by locale, e.g. {"de": {...}}'
    )

    # ---- What a recall notice must state (EU GPSR Art. 36(2), 16 CFR 1115.27), beside the title,
    # description, hazard, stop-using, remedies and units above. Optional with defaults, so recalls
    # stored before them stay valid; ``recall_shared.notice_items`` says which are still missing.
    brand: Title = Field(default="", description="The brand or manufacturer as on the product")
    identifier_location: Text = Field(
        default="",
        description="Where the model, lot, serial or date is printed on the product, in words",
    )
    identifier_location_image: Url = Field(
        default="", description="A photo or drawing of where the identifiers are printed"
    )
    sold: DateWindow | None = Field(default=None, description="When the product was sold")
    sale_channels: list[Title] = Field(
        default=[],
        description='Where it was sold: "online at shop.example", "Acme stores nationwide"',
    )
    incidents: Text = Field(
        default="", description="The incidents and injuries reported, as the recall states them"
    )
    incidents_reported: int | None = Field(default=None, ge=0, le=INT32_MAX)
    injuries_reported: int | None = Field(default=None, ge=0, le=INT32_MAX)
    helpline_phone: str = Field(
        default="", max_length=100, description="A free helpline, as it should be dialled"
    )
    helpline_url: Url = Field(default="", description="A free online service for this recall")
    pass_it_on: bool = Field(
        default=True,
        description="Ask the customer to pass the notice on to anyone they gave or sold it to",
    )


def _https_only(url: str) -> str:
    if not url[:8].lower() == "https://":
        raise ValueError(
            "must be an https:// URL: an email client fetching a plain-http (or any other) image "
            "tells its host who opened the notice, and when"
        )
    return url


# The pattern tells the OpenAPI document what _https_only checks (it gives the clearer message).
HttpsUrl = Annotated[
    Url,
    AfterValidator(_https_only),
    Field(json_schema_extra={"pattern": "^[Hh][Tt][Tt][Pp][Ss]://"}),
]


# What the validators below check, as JSON Schema patterns (the validators word it better).
_HTTPS_OR_EMPTY = "^(?:[Hh][Tt][Tt][Pp][Ss]://.+)?$"
_PHONE_OR_EMPTY = r"^(?:\+?[0-9(][0-9A-Z ()./-]*[0-9A-Z])?$"


def _https_or_empty(url: str) -> str:
    if url and url[:8].lower() != "https://":
        raise ValueError("must be an https:// URL (or empty): a customer follows it from a notice")
    return url


OptionalHttpsUrl = Annotated[Url, AfterValidator(_https_or_empty)]

_PHONE = re.compile(_PHONE_OR_EMPTY)


def _phone_number(number: str) -> str:
    if not _PHONE.match(number):
        raise ValueError(
            "a phone number as dialled: an optional leading +, a digit or ( first, then digits "
            "(capital letters for a vanity number), spaces, hyphens, dots, slashes or parentheses"
        )
    return number


LanguageTag = Annotated[
    str,
    Field(
        max_length=10,
        pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$",
        description='A language tag (BCP 47): "de", "de-AT", "pt-BR"',
    ),
]


class SellerRecallContent(RecallContent):
    """Recall content as a seller submits it (recall-intake's API): images only over https, and
    languages named by their tags (a translation under "German" would never be shown to anyone).

    The events carry :class:`RecallContent`, which takes any image URL: recalls already stored and
    regulators' imports may hold others, and the notifier puts only https images in its emails."""

    images: list[HttpsUrl] = Field(default=[], description="https:// URLs only")
    locale: LanguageTag = Field(default="en", description="The language of the main texts")
    texts: dict[LanguageTag, LocalizedText] = Field(
        default={},
        description="The seller's own texts in more languages, by language tag, e.g. "
        '{"de": {...}}; a reader of a language without them gets the main texts, marked and said '
        "so",
        # The keys are the pattern's (patternProperties) and nothing else, as the API checks.
        json_schema_extra={"additionalProperties": False},
    )
    identifier_location_image: OptionalHttpsUrl = Field(
        default="",
        description="https:// URL of a photo or drawing of where the identifiers are",
        json_schema_extra={"pattern": _HTTPS_OR_EMPTY},
    )
    helpline_url: OptionalHttpsUrl = Field(
        default="",
        description="https:// URL of a free online service for this recall",
        json_schema_extra={"pattern": _HTTPS_OR_EMPTY},
    )
    helpline_phone: Annotated[str, Field(max_length=40), AfterValidator(_phone_number)] = Field(
        default="",
        description='As dialled: "+49 800 123 4567", "1-800-555-0100"',
        json_schema_extra={"pattern": _PHONE_OR_EMPTY},
    )


class RecallSnapshot(Model):
    """A recall at one version, with its full scope."""

    recall_id: MintedId
    version: Version
    seller_id: Id | None = Field(
        description="The recalling seller; null for operator/regulator recalls."
    )
    content: RecallContent
    rules: list[ScopeRule] = Field(min_length=1)
    published_at: datetime
    logistics_enrolled: bool = Field(
        default=False,
        description="The seller opted in: the marketplace runs refunds and returns for this "
        "recall.",
    )


class RecallPublished(Event):
    event_type: ClassVar[str] = "recall.published.v1"
    topic: ClassVar[str] = "recalls.v1"
    recall: RecallSnapshot

    def partition_key(self) -> str:
        return self.recall.recall_id


class RecallAmended(Event):
    event_type: ClassVar[str] = "recall.amended.v1"
    topic: ClassVar[str] = "recalls.v1"
    recall: RecallSnapshot

    def partition_key(self) -> str:
        return self.recall.recall_id


class RecallClosed(Event):
    """The recall is over: its alerts close. ``withdrawn`` says it ended because it was withdrawn
    (issued in error: the product is not recalled after all), not completed; a consumer that
    predates the field takes a withdrawal as a closure, which ends its alerts either way."""

    event_type: ClassVar[str] = "recall.closed.v1"
    topic: ClassVar[str] = "recalls.v1"
    recall: RecallSnapshot
    closed_at: datetime
    withdrawn: bool = Field(
        default=False,
        description="Withdrawn (issued in error, the product is not recalled), not completed",
    )
    reason: Text = Field(
        default="", description="Why it was closed or withdrawn, in words the public may read"
    )

    def partition_key(self) -> str:
        return self.recall.recall_id


# --------------------------------------------------------------------------- orders.v1 (upstream)


class OrderLine(Model):
    line_id: Id
    product_id: Id
    title: Title = ""
    gtin: Code | None = None
    model_number: Code | None = None
    seller_id: Id
    quantity: Quantity
    unit_price: Money
    currency: CurrencyCode
    lot: Code | None = None
    serial: Code | None = None
    manufactured_on: date | None = None
    best_before: date | None = None
    expires_on: date | None = None


class GiftRecipient(Model):
    """Whom a gift went to, as the purchaser gave them at checkout: someone to tell of a recall of
    it too (the notifier sends them the notice, on the purchaser's behalf)."""

    name: Title = ""
    email: Email | None = None
    phone: Phone | None = None
    locale: Locale = "en"
    # Added in orders.v1 without a version change (optional): without an email or a phone, the
    # recipient of a critical or high recall is sent a letter (notifier letter batch).
    postal_address: PostalAddress | None = Field(
        default=None, description="The recipient's postal address, if the purchaser gave it"
    )


class OrderPlaced(Event):
    event_type: ClassVar[str] = "order.placed.v1"
    topic: ClassVar[str] = "orders.v1"
    order_id: Id
    customer_id: Id
    placed_at: datetime
    lines: list[OrderLine] = Field(min_length=1)
    is_gift: bool = False
    # Added in orders.v1 without a version change (optional): the notifier tells them too.
    gift_recipient: GiftRecipient | None = Field(
        default=None, description="For a gift: the recipient's contact, if the purchaser gave it"
    )
    business_account_admin_id: Id | None = Field(
        default=None,
        description="For business accounts: the admin customer to notify beside the purchaser.",
    )

    def partition_key(self) -> str:
        return self.customer_id


class OrderLineShipped(Event):
    event_type: ClassVar[str] = "order.line_shipped.v1"
    topic: ClassVar[str] = "orders.v1"
    order_id: Id
    customer_id: Id
    line_id: Id
    shipped_at: datetime
    lot: Code | None = None
    serial: Code | None = None
    manufactured_on: date | None = None
    best_before: date | None = None
    expires_on: date | None = None

    def partition_key(self) -> str:
        return self.customer_id


class OrderCancelled(Event):
    event_type: ClassVar[str] = "order.cancelled.v1"
    topic: ClassVar[str] = "orders.v1"
    order_id: Id
    customer_id: Id
    line_ids: list[Id] | None = Field(
        default=None, description="Cancelled lines; null cancels the whole order."
    )
    cancelled_at: datetime

    def partition_key(self) -> str:
        return self.customer_id


class OrderLineReturned(Event):
    event_type: ClassVar[str] = "order.line_returned.v1"
    topic: ClassVar[str] = "orders.v1"
    order_id: Id
    customer_id: Id
    line_id: Id
    quantity: Quantity
    returned_at: datetime
    refunded_amount: Money | None = None

    def partition_key(self) -> str:
        return self.customer_id


# ------------------------------------------------------------------- catalog.listings.v1 (upstream)


class ListingUpdated(Event):
    event_type: ClassVar[str] = "catalog.listing_updated.v1"
    topic: ClassVar[str] = "catalog.listings.v1"
    product_id: Id
    title: Title
    brand: Title = ""
    gtins: list[Code] = []
    model_numbers: list[Code] = []
    parent_product_id: Id | None = None
    image_url: Url | None = None
    seller_ids: list[Id] = []

    def partition_key(self) -> str:
        return self.product_id


# -------------------------------------------------------------------------- customers.v1 (upstream)


class PostalAddress(Model):
    """A postal address as a mail house prints it on the envelope: the recipient line, one to
    four street lines, postal code, city, an optional region, and the country (ISO 3166-1
    alpha-2)."""

    recipient: Title = Field(default="", description="Name on the envelope; default: the name")
    lines: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(
        min_length=1, max_length=4, description="Street, number, building, ..."
    )
    postal_code: Annotated[str, Field(max_length=20)] = ""
    city: Annotated[str, Field(min_length=1, max_length=100)]
    region: Annotated[str, Field(max_length=100)] = ""
    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$")]


class CustomerUpdated(Event):
    event_type: ClassVar[str] = "customer.updated.v1"
    topic: ClassVar[str] = "customers.v1"
    customer_id: Id
    name: Title = ""
    email: Email | None = None
    safety_email: Email | None = Field(
        default=None, description="Safety-only contact; takes precedence."
    )
    locale: Locale = "en"
    marketing_opt_in: bool = Field(
        default=False, description="Ignored for safety notices, on purpose."
    )
    # Added in customers.v1 without a version change (optional, with defaults): the second channel.
    phone: Phone | None = Field(
        default=None,
        description="Mobile number in E.164 (+4915112345678), for safety notices by SMS when email "
        "is missing or fails (the recall's severity decides, see the notifier's channel policy).",
    )
    sms_opt_out: bool = Field(
        default=False,
        description="The customer refused SMS as a channel: honoured even for safety notices "
        "(unlike marketing_opt_in, which they ignore).",
    )
    # Added in customers.v1 without a version change (optional, with defaults): postal letters.
    postal_address: PostalAddress | None = Field(
        default=None,
        description="Where a letter reaches the customer, for safety notices by post when no "
        "digital channel can (the recall's severity decides, see the notifier's channel policy).",
    )
    letter_opt_out: bool = Field(
        default=False,
        description="The customer refused letters as a channel: honoured even for safety notices, "
        "like sms_opt_out.",
    )

    def partition_key(self) -> str:
        return self.customer_id


# --------------------------------------------------------------------------- alerts.v1


class AffectedLine(Model):
    order_id: Id
    line_id: Id
    product_id: Id
    title: Title = ""
    gtin: Code | None = None
    model_number: Code | None = None
    seller_id: Id
    purchased_at: datetime
    units: Quantity = Field(description="Affected units: ordered minus cancelled and returned.")
    unit_price: Money
    currency: CurrencyCode
    lot: Code | None = None
    serial: Code | None = None
    tier: AlertTier = "confirmed"
    unknown_attributes: list[Annotated[str, Field(max_length=100)]] = Field(
        default=[],
        description="What the scope needs but we do not know for this line (lot, serial, ...): "
        "the customer is asked to check the label",
    )
    # Added in alerts.v1 without a version change (optional): the order's gift flag and recipient.
    is_gift: bool = Field(default=False, description="Bought as a gift: ask to pass it on")
    gift_recipient: GiftRecipient | None = Field(
        default=None, description="The gift's recipient, told too (from order.placed.v1)"
    )


class AlertState(Model):
    """An alert's full state; every alert event but withdrawal carries it."""

    alert_id: MintedId
    alert_version: Version = Field(description="Increments whenever lines, units or tier change.")
    customer_id: Id
    recall_id: MintedId
    recall_version: Int32
    seller_id: Id | None
    tier: AlertTier
    lines: list[AffectedLine] = Field(min_length=1)
    recall: RecallContent
    business_account_admin_id: Id | None = None


class AlertRaised(Event):
    event_type: ClassVar[str] = "alert.raised.v1"
    topic: ClassVar[str] = "alerts.v1"
    alert: AlertState

    def partition_key(self) -> str:
        return self.alert.customer_id

    def subject(self) -> str:
        return self.alert.alert_id


class AlertUpdated(Event):
    event_type: ClassVar[str] = "alert.updated.v1"
    topic: ClassVar[str] = "alerts.v1"
    alert: AlertState

    def partition_key(self) -> str:
        return self.alert.customer_id

    def subject(self) -> str:
        return self.alert.alert_id


class AlertWithdrawn(Event):
    event_type: ClassVar[str] = "alert.withdrawn.v1"
    topic: ClassVar[str] = "alerts.v1"
    alert_id: MintedId
    alert_version: Int32
    customer_id: Id
    recall_id: MintedId
    recall_version: Int32
    reason: Text

    def partition_key(self) -> str:
        return self.customer_id

    def subject(self) -> str:
        return self.alert_id


class AlertClosed(Event):
    event_type: ClassVar[str] = "alert.closed.v1"
    topic: ClassVar[str] = "alerts.v1"
    alert_id: MintedId
    customer_id: Id
    recall_id: MintedId
    closed_at: datetime

    def partition_key(self) -> str:
        return self.customer_id

    def subject(self) -> str:
        return self.alert_id


class SaleAfterRecallDetected(Event):
    """Selling a recalled item is an incident: an order line in scope placed after publication."""

    event_type: ClassVar[str] = "alert.sale_after_recall_detected.v1"
    topic: ClassVar[str] = "alerts.v1"
    recall_id: MintedId
    recall_version: Int32
    customer_id: Id
    order_id: Id
    line_id: Id
    product_id: Id
    seller_id: Id
    placed_at: datetime
    recall_published_at: datetime

    def partition_key(self) -> str:
        return self.customer_id


# --------------------------------------------------------------------------- notifications.v1


class NoticeSent(Event):
    event_type: ClassVar[str] = "notification.sent.v1"
    topic: ClassVar[str] = "notifications.v1"
    notice_id: MintedId
    alert_id: MintedId
    customer_id: Id
    recall_id: MintedId
    kind: NoticeKind
    alert_version: Int32
    channel: Literal["email"] = "email"
    recipient_role: Literal["purchaser", "safety_contact", "account_admin"]
    gift_recipient: bool = Field(
        default=False,
        description="Sent to the recipient of a gift the purchaser bought, on the purchaser's "
        "behalf (recipient_role is then purchaser)",
    )
    sent_at: datetime

    def partition_key(self) -> str:
        return self.customer_id

    def subject(self) -> str:
        return self.alert_id


class NoticeFailed(Event):
    event_type: ClassVar[str] = "notification.failed.v1"
    topic: ClassVar[str] = "notifications.v1"
    notice_id: MintedId
    alert_id: MintedId
    customer_id: Id
    recall_id: MintedId
    kind: NoticeKind
    alert_version: Int32
    channel: Literal["email"] = "email"
    reason: Text
    permanent: bool
    # Added in notifications.v1 without a version change (optional), as on notification.sent.v1.
    gift_recipient: bool = Field(
        default=False,
        description="Meant for the recipient of a gift the purchaser bought, on the purchaser's "
        "behalf",
    )
    failed_at: datetime

    def partition_key(self) -> str:
        return self.customer_id

    def subject(self) -> str:
        return self.alert_id


class NoticeSmsSent(Event):
    """A notice went out by SMS (the provider accepted it): the notifier's fallback channel. Its
    own type, since notification.sent.v1 is email by contract. What became of it follows as
    notification.delivered.v1 / bounced.v1 with channel "sms"."""

    event_type: ClassVar[str] = "notification.sms_sent.v1"
    topic: ClassVar[str] = "notifications.v1"
    notice_id: MintedId
    alert_id: MintedId
    customer_id: Id
    recall_id: MintedId
    kind: NoticeKind
    alert_version: Int32
    channel: Literal["sms"] = "sms"
    recipient_role: Literal["purchaser", "safety_contact", "account_admin"]
    gift_recipient: bool = Field(
        default=False,
        description="Sent to the recipient of a gift the purchaser bought, on the purchaser's "
        "behalf (recipient_role is then purchaser)",
    )
    sent_at: datetime

    def partition_key(self) -> str:
        return self.customer_id

    def subject(self) -> str:
        return self.alert_id


class NoticeLetterSent(Event):
    """A notice went out by post: its letter is in a batch handed to the mail house (the PDF and
    the batch's manifest are written). The notifier's last channel, for customers no digital one
    can reach. Its own type, as notification.sms_sent.v1 is."""

    event_type: ClassVar[str] = "notification.letter_sent.v1"
    topic: ClassVar[str] = "notifications.v1"
    notice_id: MintedId
    alert_id: MintedId
    customer_id: Id
    recall_id: MintedId
    kind: NoticeKind
    alert_version: Int32
    channel: Literal["letter"] = "letter"
    recipient_role: Literal["purchaser", "safety_contact", "account_admin"]
    gift_recipient: bool = Field(
        default=False,
        description="Sent to the recipient of a gift the purchaser bought, on the purchaser's "
        "behalf (recipient_role is then purchaser)",
    )
    batch_id: Code = Field(description="The letter batch (and manifest) it went out in")
    sent_at: datetime

    def partition_key(self) -> str:
        return self.customer_id

    def subject(self) -> str:
        return self.alert_id


class NoticeLetterReturned(Event):
    """A letter came back undeliverable: the mail house's return file named it. A bounce of the
    post, as final as a hard one: the notice did not reach the recipient, and the address is not
    written to again until it changes. Its own type (notification.bounced.v1's ``channel`` is email
    or SMS by contract)."""

    event_type: ClassVar[str] = "notification.letter_returned.v1"
    topic: ClassVar[str] = "notifications.v1"
    notice_id: MintedId
    alert_id: MintedId
    customer_id: Id
    recall_id: MintedId
    kind: NoticeKind
    alert_version: Int32
    channel: Literal["letter"] = "letter"
    letter_id: Code = Field(description="The letter's id in its batch's manifest")
    reason: Text = Field(default="", description="As the mail house gave it, e.g. moved away")
    returned_at: datetime

    def partition_key(self) -> str:
        return self.customer_id

    def subject(self) -> str:
        return self.alert_id


# What became of a sent notice, as the recipient's mail system or the email provider reported it
# (notifier: DSN bounces to a per-notice return path, the provider's delivery webhook). New types
# rather than a changed meaning of notification.sent.v1: "sent" stays "the relay accepted it";
# reach counts "delivered" and leaves a bounced notice out.

DeliverySource = Literal["dsn", "arf", "mailgun", "twilio"]


class NoticeDelivered(Event):
    """The recipient's mail system took the notice (a DSN with Action: delivered, or the
    provider's delivered event)."""

    event_type: ClassVar[str] = "notification.delivered.v1"
    topic: ClassVar[str] = "notifications.v1"
    notice_id: MintedId
    alert_id: MintedId
    customer_id: Id
    recall_id: MintedId
    kind: NoticeKind
    alert_version: Int32
    channel: NoticeChannel = "email"
    source: DeliverySource
    delivered_at: datetime

    def partition_key(self) -> str:
        return self.customer_id

    def subject(self) -> str:
        return self.alert_id


class NoticeBounced(Event):
    """The notice did not reach the recipient, for good: a hard bounce (the address does not
    work), or a soft one (a temporary failure) that outlived its re-sends."""

    event_type: ClassVar[str] = "notification.bounced.v1"
    topic: ClassVar[str] = "notifications.v1"
    notice_id: MintedId
    alert_id: MintedId
    customer_id: Id
    recall_id: MintedId
    kind: NoticeKind
    alert_version: Int32
    channel: NoticeChannel = "email"
    bounce_type: Literal["hard", "soft"]
    status: Code = Field(default="", description="Enhanced status code (RFC 3463), e.g. 5.1.1")
    reason: Text = ""
    source: DeliverySource
    bounced_at: datetime

    def partition_key(self) -> str:
        return self.customer_id

    def subject(self) -> str:
        return self.alert_id


class NoticeComplained(Event):
    """The recipient marked the notice as spam (a feedback report, or the provider's complained
    event): it was delivered, and the address should not get marketing (it never does)."""

    event_type: ClassVar[str] = "notification.complained.v1"
    topic: ClassVar[str] = "notifications.v1"
    notice_id: MintedId
    alert_id: MintedId
    customer_id: Id
    recall_id: MintedId
    kind: NoticeKind
    alert_version: Int32
    channel: NoticeChannel = "email"
    source: DeliverySource
    complained_at: datetime

    def partition_key(self) -> str:
        return self.customer_id

    def subject(self) -> str:
        return self.alert_id


# What became of a remedy notice (issue 14): the return label, the refund confirmation, the
# replacement's dispatch, sent by the notifier from remedies.v1. Its own type, because the kinds of
# notification.*.v1 are a recall notice's by contract (a new value would fail their consumers).

RemedyNoticeKind = Literal["return_label", "refund_confirmed", "replacement_shipped"]
RemedyNoticeState = Literal["sent", "failed", "delivered", "bounced", "complained"]


class RemedyNoticeStatus(Event):
    """A remedy notice's step: sent (the relay took it), failed (for good), then what its
    recipient's mail system reported (delivered, bounced, complained). One event per step, with a
    deterministic id, like the recall notices' events."""

    event_type: ClassVar[str] = "notification.remedy_notice.v1"
    topic: ClassVar[str] = "notifications.v1"
    notice_id: MintedId
    case_id: MintedId
    alert_id: MintedId
    customer_id: Id
    recall_id: MintedId
    kind: RemedyNoticeKind
    channel: NoticeChannel = "email"
    status: RemedyNoticeState
    recipient_role: Literal["purchaser", "safety_contact", "account_admin"] | None = None
    bounce_type: Literal["hard", "soft"] | None = None
    reason: Text = ""
    source: DeliverySource | None = Field(
        default=None, description="Who reported a delivered, bounced or complained step"
    )
    at: datetime

    def partition_key(self) -> str:
        return self.customer_id

    def subject(self) -> str:
        return self.case_id


# --------------------------------------------------------------------------- remedies.v1


class RemedyRequested(Event):
    """A customer's choice of remedy, from customer-api; refund-logistics runs the case."""

    event_type: ClassVar[str] = "remedy.requested.v1"
    topic: ClassVar[str] = "remedies.v1"
    request_id: MintedId
    alert_id: MintedId
    customer_id: Id
    recall_id: MintedId
    remedy: RemedyType
    requested_at: datetime

    def partition_key(self) -> str:
        return self.customer_id

    def subject(self) -> str:
        return self.alert_id


class NotAffectedDeclared(Event):
    event_type: ClassVar[str] = "remedy.not_affected_declared.v1"
    topic: ClassVar[str] = "remedies.v1"
    alert_id: MintedId
    customer_id: Id
    recall_id: MintedId
    declared_at: datetime
    reason: Text = ""

    def partition_key(self) -> str:
        return self.customer_id

    def subject(self) -> str:
        return self.alert_id


class LabelConfirmed(Event):
    """The customer read the product's label ("am I affected?", customer-api) and the recall's
    scope rules put the unit in it. purchase-matcher, which owns alerts, takes the typed values as
    known for the alert's lines and raises its tier to ``confirmed`` (alert.updated.v1). Only a
    confirmation is sent: "not affected" is ``remedy.not_affected_declared.v1``, "cannot tell"
    changes nothing."""

    event_type: ClassVar[str] = "remedy.label_confirmed.v1"
    topic: ClassVar[str] = "remedies.v1"
    alert_id: MintedId
    customer_id: Id
    recall_id: MintedId
    alert_version: Version = Field(description="The alert version the customer checked.")
    lot: Code | None = None
    serial: Code | None = None
    manufactured_on: date | None = None
    best_before: date | None = None
    expires_on: date | None = None
    confirmed_at: datetime

    def partition_key(self) -> str:
        return self.customer_id

    def subject(self) -> str:
        return self.alert_id


# --------------------------------------------------------------------------- alert_views.v1


class AlertViewed(Event):
    """The signed-in customer opened one of their alert pages, first time for this alert version
    (customer-api, once per alert and version, whatever the number of views). First-party: the
    link in a message is the same for every message and carries no tracking token, and nothing is
    learnt from a message being displayed (no pixel). The notifier counts it like an answer: an
    alert opened is not followed up on the next channel."""

    event_type: ClassVar[str] = "alert.viewed.v1"
    topic: ClassVar[str] = "alert_views.v1"
    alert_id: MintedId
    customer_id: Id
    recall_id: MintedId
    alert_version: Version = Field(description="The alert version the page showed.")
    viewed_at: datetime

    def partition_key(self) -> str:
        return self.customer_id

    def subject(self) -> str:
        return self.alert_id


CaseState = Literal[
    "requested",
    "referred_to_seller",
    "label_issued",
    "item_received",
    "refunded",
    "replacement_shipped",
    "repaired",
    "closed",
    "rejected",
]


# What a case waits for and its return label (issue 14), on the events below.
CaseWaitingFor = Literal[
    "recall", "alert", "proof", "review", "label", "item", "payment", "seller", "operator"
]


class ReturnLabelRef(Model):
    """A return label as the customer needs it: where to fetch it and how to track the parcel."""

    tracking_number: Code
    label_url: Url
    carrier_ref: Code = ""


class RemedyCaseTransitioned(Event):
    """Every transition of a remedy case, with the case's full state after it."""

    event_type: ClassVar[str] = "remedy.case_transitioned.v1"
    topic: ClassVar[str] = "remedies.v1"
    case_id: MintedId
    request_id: MintedId
    alert_id: MintedId
    customer_id: Id
    recall_id: MintedId
    seller_id: Id | None
    remedy: RemedyType
    transition: str = Field(
        max_length=40, description="Named transition, e.g. 'open', 'issue_refund'."
    )
    from_state: CaseState | None
    state: CaseState
    refunded_amount: Money = Decimal("0")
    currency: CurrencyCode | None = None
    reason: Text | None = None
    occurred_at: datetime
    # Added for the customer's case page (issue 14); absent from older events.
    waiting_for: CaseWaitingFor | None = Field(
        default=None, description="What the case waits for after the transition, if anything."
    )
    label: ReturnLabelRef | None = Field(
        default=None, description="The prepaid return label, on the issue_label transition."
    )

    def partition_key(self) -> str:
        return self.customer_id

    def subject(self) -> str:
        return self.case_id


# The steps of a proof of destruction's review (issue 14), which move a case without changing its
# state.

ProofStep = Literal["proof_under_review", "proof_accepted", "proof_rejected"]


class RemedyCaseProgressed(Event):
    """A step of a case that does not change its state: a proof of destruction held for an
    operator's review, accepted (by the review or the policy) or rejected (with the reason the
    customer sees; the customer may upload another)."""

    event_type: ClassVar[str] = "remedy.case_progressed.v1"
    topic: ClassVar[str] = "remedies.v1"
    case_id: MintedId
    request_id: MintedId
    alert_id: MintedId
    customer_id: Id
    recall_id: MintedId
    remedy: RemedyType
    step: ProofStep
    attempt: Version = Field(description="The proof upload this step is about: 1, 2, ...")
    state: CaseState
    waiting_for: CaseWaitingFor | None = None
    reason: Text | None = None
    occurred_at: datetime

    def partition_key(self) -> str:
        return self.customer_id

    def subject(self) -> str:
        return self.case_id


# --------------------------------------------------------------------------- sellers.v1


class ApiKeyIssued(Event):
    """A seller or operator API key, as a hash: lets other services authenticate sellers from their
    own read model. The plaintext key never leaves recall-intake."""

    event_type: ClassVar[str] = "seller.api_key_issued.v1"
    topic: ClassVar[str] = "sellers.v1"
    key_id: MintedId
    key_hash: str = Field(
        max_length=64, description="HMAC-SHA256 of the key under the system's API key pepper"
    )
    role: Literal["seller", "operator"]
    seller_id: Id | None
    issued_at: datetime

    def partition_key(self) -> str:
        return self.key_id


class ApiKeyRevoked(Event):
    event_type: ClassVar[str] = "seller.api_key_revoked.v1"
    topic: ClassVar[str] = "sellers.v1"
    key_id: MintedId
    revoked_at: datetime

    def partition_key(self) -> str:
        return self.key_id


# --------------------------------------------------------------------------- stop_sales.v1
# Facts, in the past tense: purchase-matcher declared (or lifted) a stop-sale of one seller's
# listing because of one recall. What the catalog does about it (suppressing the listing) is the
# catalog's own act and its own event; a name such as "listing.suppression_requested" would be a
# command to it in disguise (docs/events.md, "Naming").

StopSaleTier = Literal["confirmed", "possibly_affected"]


class StopSaleDeclared(Event):
    """A recall reaches this seller's listing of a product: stop selling it until lifted.

    ``possibly_affected``: the scope depends on what a listing does not say (lot, serial, dates;
    ``unknown_attributes``), so some units may be fine; the sale stops all the same. Declared again
    (a new event id) when an amendment changes how the recall reaches the listing."""

    event_type: ClassVar[str] = "stop_sale.declared.v1"
    topic: ClassVar[str] = "stop_sales.v1"
    recall_id: MintedId
    recall_version: Int32
    product_id: Id
    seller_id: Id
    tier: StopSaleTier
    unknown_attributes: list[Annotated[str, Field(max_length=100)]] = []
    title: Title = Field(default="", description="The recall's title, for the catalog's tools")
    severity: Severity
    declared_at: datetime

    def partition_key(self) -> str:
        return self.product_id

    def subject(self) -> str:
        return f"{self.recall_id}/{self.product_id}/{self.seller_id}"


StopSaleLiftReason = Literal["recall_closed", "out_of_scope", "no_longer_listed"]


class StopSaleLifted(Event):
    """The recall no longer stops the sale of this listing. A listing is sellable again once every
    recall that declared a stop-sale of it has lifted it."""

    event_type: ClassVar[str] = "stop_sale.lifted.v1"
    topic: ClassVar[str] = "stop_sales.v1"
    recall_id: MintedId
    recall_version: Int32
    product_id: Id
    seller_id: Id
    reason: StopSaleLiftReason = Field(
        description="recall_closed; out_of_scope: an amended scope no longer covers the listing; "
        "no_longer_listed: the catalog no longer lists the product for this seller, or no longer "
        "with the identifiers the recall names"
    )
    lifted_at: datetime
    compliance_letter_id: MintedId | None = Field(
        default=None,
        description="out_of_scope because of this accepted Letter of Compliance "
        "(compliance_letter.accepted.v1): the stock the seller now offers is outside the scope",
    )

    def partition_key(self) -> str:
        return self.product_id

    def subject(self) -> str:
        return f"{self.recall_id}/{self.product_id}/{self.seller_id}"


# --------------------------------------------------------------------------- shipment_holds.v1
# Facts as well: purchase-matcher declared a hold of an order line that is placed but not shipped;
# fulfilment holds the parcel (its own act).

ShipmentHoldReleaseReason = Literal["recall_closed", "out_of_scope", "shipped", "cancelled"]


class ShipmentHoldDeclared(Event):
    """A recall reaches an order line not shipped yet: do not ship it (``possibly_affected``: check
    the unit's ``unknown_attributes`` first; a shipment event with them settles it)."""

    event_type: ClassVar[str] = "shipment_hold.declared.v1"
    topic: ClassVar[str] = "shipment_holds.v1"
    recall_id: MintedId
    recall_version: Int32
    order_id: Id
    line_id: Id
    customer_id: Id
    product_id: Id
    seller_id: Id
    tier: AlertTier
    unknown_attributes: list[Annotated[str, Field(max_length=100)]] = []
    declared_at: datetime

    def partition_key(self) -> str:
        return self.order_id

    def subject(self) -> str:
        return f"{self.recall_id}/{self.line_id}"


class ShipmentHoldReleased(Event):
    event_type: ClassVar[str] = "shipment_hold.released.v1"
    topic: ClassVar[str] = "shipment_holds.v1"
    recall_id: MintedId
    recall_version: Int32
    order_id: Id
    line_id: Id
    customer_id: Id
    reason: ShipmentHoldReleaseReason = Field(
        description="recall_closed; out_of_scope: the line is outside the (amended) scope, or its "
        "lot or serial learnt at shipment is; shipped: it shipped regardless (the customer's "
        "alert takes over); cancelled: no units left to ship"
    )
    released_at: datetime

    def partition_key(self) -> str:
        return self.order_id

    def subject(self) -> str:
        return f"{self.recall_id}/{self.line_id}"


# --------------------------------------------------------------------------- compliance_letters.v1
# A seller's Letter of Compliance (Amazon's term): the stock it now offers of a recalled listing is
# outside the recall (made after a date, or of new lots). recall-intake records the letter; once an
# operator accepts it, purchase-matcher lifts the stop-sale of the listing if the recall's scope no
# longer covers that stock (stop_sale.lifted.v1 with the letter's id).


class ComplianceLetterAccepted(Event):
    """An operator accepted a seller's corrected scope for one listing of a recall: the stock the
    seller offers from now on is ``lots`` (any of them) and/or made after ``made_after``."""

    event_type: ClassVar[str] = "compliance_letter.accepted.v1"
    topic: ClassVar[str] = "compliance_letters.v1"
    letter_id: MintedId
    recall_id: MintedId
    product_id: Id
    seller_id: Id
    made_after: date | None = Field(
        default=None, description="Every unit offered was made after this day"
    )
    lots: list[NonEmptyCode] = Field(default=[], description="Every unit offered is of these lots")
    serials: list[CodeRange] = Field(
        default=[], description="Every unit offered has a serial in one of these ranges"
    )
    best_before_after: date | None = Field(
        default=None, description="Every unit offered is best before a day after this one"
    )
    accepted_at: datetime

    def partition_key(self) -> str:
        return self.recall_id

    def subject(self) -> str:
        return self.letter_id


class ComplianceLetterWithdrawn(Event):
    """An operator withdrew a Letter of Compliance it had accepted (the stock was not as the
    letter said): the stop-sale it lifted is declared again while the recall reaches the listing."""

    event_type: ClassVar[str] = "compliance_letter.withdrawn.v1"
    topic: ClassVar[str] = "compliance_letters.v1"
    letter_id: MintedId
    recall_id: MintedId
    product_id: Id
    seller_id: Id
    reason: Text = ""
    withdrawn_at: datetime

    def partition_key(self) -> str:
        return self.recall_id

    def subject(self) -> str:
        return self.letter_id


ALL_EVENTS: tuple[type[Event], ...] = (
    RecallPublished,
    RecallAmended,
    RecallClosed,
    OrderPlaced,
    OrderLineShipped,
    OrderCancelled,
    OrderLineReturned,
    ListingUpdated,
    CustomerUpdated,
    AlertRaised,
    AlertUpdated,
    AlertWithdrawn,
    AlertClosed,
    SaleAfterRecallDetected,
    NoticeSent,
    NoticeFailed,
    NoticeSmsSent,
    NoticeLetterSent,
    NoticeLetterReturned,
    NoticeDelivered,
    NoticeBounced,
    NoticeComplained,
    RemedyNoticeStatus,
    RemedyRequested,
    NotAffectedDeclared,
    RemedyCaseTransitioned,
    RemedyCaseProgressed,
    LabelConfirmed,
    AlertViewed,
    ApiKeyIssued,
    ApiKeyRevoked,
    StopSaleDeclared,
    StopSaleLifted,
    ShipmentHoldDeclared,
    ShipmentHoldReleased,
    ComplianceLetterAccepted,
    ComplianceLetterWithdrawn,
)

EVENTS_BY_TYPE: dict[str, type[Event]] = {cls.event_type: cls for cls in ALL_EVENTS}
