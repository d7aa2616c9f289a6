"""Matching, free of I/O: which order lines a recall's rules reach, grouped into one alert per
customer, and what changed since the last announcement."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Literal, NamedTuple, TypeVar

import orjson

from recall_shared import events as ev
from recall_shared.event_ids import event_id, hashed_event_id
from recall_shared.identifiers import model_key
from recall_shared.scope import range_verdict

__all__ = ["model_key"]  # re-exported: the matcher's notion of a model number is the contract's

ALERT_NAMESPACE = uuid.UUID("6f0c1c9e-4c1b-4d55-9a1e-2b7f6c1d2a10")


_NAMESPACE_BYTES = ALERT_NAMESPACE.bytes


def alert_id_for(recall_id: str, customer_id: str) -> str:
    """Deterministic: the same (recall, customer) always gets the same alert id, on any replica or
    replay.

    ``uuid.uuid5(ALERT_NAMESPACE, recall_id + "\\x1f" + customer_id)``, computed without the UUID
    object: this runs once per affected customer."""
    digest = bytearray(
        hashlib.sha1(_NAMESPACE_BYTES + f"{recall_id}\x1f{customer_id}".encode()).digest()[:16]
    )
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class Line(NamedTuple):
    """One order line as matching sees it. A tuple: a recall can stream a million of them
    through."""

    line_id: str
    order_id: str
    customer_id: str
    product_id: str
    title: str
    gtin: str | None
    model_number: str | None
    seller_id: str
    quantity: int
    returned_quantity: int
    cancelled: bool
    unit_price: Decimal
    currency: str
    lot: str | None
    serial: str | None
    placed_at: datetime
    business_account_admin_id: str | None = None
    manufactured_on: date | None = None
    best_before: date | None = None
    expires_on: date | None = None
    # The order's gift flag and the recipient's contact (a JSON object, as stored), for the alert.
    is_gift: bool = False
    gift_recipient: str | None = None

    @property
    def units(self) -> int:
        """Units still with the customer: none when cancelled, fewer after (partial) returns."""
        return 0 if self.cancelled else max(self.quantity - self.returned_quantity, 0)


IdentifierKind = Literal["product", "gtin", "model"]


def recall_identifiers(recall: ev.RecallSnapshot) -> dict[IdentifierKind, list[str]]:
    """Every identifier the recall's rules name, by kind (model numbers as keys): what finds
    candidate lines."""
    return {
        "product": sorted({p for r in recall.rules for p in r.product_ids}),
        "gtin": sorted({g for r in recall.rules for g in r.gtins}),
        "model": sorted({k for r in recall.rules for m in r.model_numbers if (k := model_key(m))}),
    }


def line_identifiers(lines: Iterable[Line]) -> dict[IdentifierKind, list[str]]:
    """The same, for order lines: what finds the recalls that could reach them."""
    lines = list(lines)
    return {
        "product": sorted({line.product_id for line in lines}),
        "gtin": sorted({line.gtin for line in lines if line.gtin}),
        "model": sorted({k for line in lines if (k := model_key(line.model_number))}),
    }


class Reach(NamedTuple):
    """How a recall reaches one line: confirmed, or possibly affected because of what we do not
    know."""

    tier: ev.AlertTier
    unknown: tuple[str, ...] = ()


CONFIRMED = Reach("confirmed")


def rule_reach(rule: ev.ScopeRule, line: Line) -> Reach | None:
    """One rule against one line. Every constraint must hold (AND); a constraint on an attribute the
    line does not know makes it possibly affected; known and outside the constraint means not
    affected. A lot or serial recorded in a form the rule cannot compare counts as unknown."""
    identified = (
        line.product_id in rule.product_ids
        or (line.gtin is not None and line.gtin in rule.gtins)
        or (bool(rule.model_numbers) and _model_in(line.model_number, rule.model_numbers))
    )
    if not identified:
        return None
    if rule.seller_ids and line.seller_id not in rule.seller_ids:
        return None
    if rule.purchased is not None and not rule.purchased.contains(line.placed_at.date()):
        return None
    unknown: list[str] = []
    for name, codes, value in (("lot", rule.lots, line.lot), ("serial", rule.serials, line.serial)):
        if codes is None:
            continue
        verdict = "unknown" if value is None else codes.verdict(value)
        if verdict == "out":
            return None
        if verdict == "unknown":  # not recorded, or recorded in a form the rule cannot compare
            unknown.append(name)
    for name, window, day in (
        ("manufacture date", rule.manufactured, line.manufactured_on),
        ("best-before date", rule.best_before, line.best_before),
        ("expiry date", rule.expiry, line.expires_on),
    ):
        if window is None:
            continue
        if day is None:
            unknown.append(name)
        elif not window.contains(day):
            return None
    return Reach("possibly_affected", tuple(unknown)) if unknown else CONFIRMED


def _model_in(model_number: str | None, recalled: list[str]) -> bool:
    key = model_key(model_number)
    return key is not None and key in {model_key(m) for m in recalled}


def line_reach(rules: Iterable[ev.ScopeRule], line: Line) -> Reach | None:
    """Rules combine with OR: a confirming rule wins; otherwise what any rule could not check."""
    possible: list[Reach] = []
    for rule in rules:
        reach = rule_reach(rule, line)
        if reach is None:
            continue
        if reach.tier == "confirmed":
            return reach
        possible.append(reach)
    if not possible:
        return None
    unknown = tuple(dict.fromkeys(u for r in possible for u in r.unknown))
    return Reach("possibly_affected", unknown)


def rule_tier(rule: ev.ScopeRule, line: Line) -> ev.AlertTier | None:
    reach = rule_reach(rule, line)
    return reach.tier if reach else None


def line_tier(rules: Iterable[ev.ScopeRule], line: Line) -> ev.AlertTier | None:
    reach = line_reach(rules, line)
    return reach.tier if reach else None


class AlertDraft(NamedTuple):
    """What the recall means for one customer now: the affected lines and how each is reached.

    ``document`` is the alert's state as the JSON the contract defines (``AlertState``), built
    directly because a recall can reach a million customers; ``state`` is the same document as the
    validated model (tests check that the two always agree, field by field).
    """

    alert_id: str
    customer_id: str
    recall: ev.RecallSnapshot
    tier: ev.AlertTier
    affected: tuple[
        tuple[Line, Reach, int], ...
    ]  # (line, how the recall reaches it, its units), oldest first
    business_account_admin_id: str | None
    fingerprint: str
    units: int  # affected units in all

    def document(self, alert_version: int = 1, recall_content: object = None) -> dict:
        """The ``AlertState`` JSON object. ``recall_content`` lets a caller pass the recall's
        content serialised once for a whole pass (an ``orjson.Fragment``); by default the model is
        embedded."""
        recall = self.recall
        return {
            "alert_id": self.alert_id,
            "alert_version": alert_version,
            "customer_id": self.customer_id,
            "recall_id": recall.recall_id,
            "recall_version": recall.version,
            "seller_id": recall.seller_id,
            "tier": self.tier,
            "lines": [
                {
                    "order_id": line.order_id,
                    "line_id": line.line_id,
                    "product_id": line.product_id,
                    "title": line.title,
                    "gtin": line.gtin,
                    "model_number": line.model_number,
                    "seller_id": line.seller_id,
                    "purchased_at": line.placed_at,
                    "units": units,
                    "unit_price": str(line.unit_price),
                    "currency": line.currency,
                    "lot": line.lot,
                    "serial": line.serial,
                    "tier": reach.tier,
                    "unknown_attributes": list(reach.unknown),
                    "is_gift": line.is_gift,
                    "gift_recipient": orjson.loads(line.gift_recipient)
                    if line.gift_recipient
                    else None,
                }
                for line, reach, units in self.affected
            ],
            "recall": recall.content if recall_content is None else recall_content,
            "business_account_admin_id": self.business_account_admin_id,
        }

    @property
    def state(self) -> ev.AlertState:
        return ev.AlertState.model_validate(self.document())


class LabelFacts(NamedTuple):
    """What the customer read on the product's label when customer-api's check confirmed it
    (``remedy.label_confirmed.v1``): kept per (recall, customer), applied on every pass."""

    lot: str | None = None
    serial: str | None = None
    manufactured_on: date | None = None
    best_before: date | None = None
    expires_on: date | None = None


def as_labelled(line: Line, label: LabelFacts) -> Line:
    """The line with what the label says standing in for what order history does not know (a
    typed value wins over a recorded one, as in customer-api's check)."""
    return line._replace(
        lot=label.lot or line.lot,
        serial=label.serial or line.serial,
        manufactured_on=label.manufactured_on or line.manufactured_on,
        best_before=label.best_before or line.best_before,
        expires_on=label.expires_on or line.expires_on,
    )


def labelled_reach(rules: list[ev.ScopeRule], line: Line, reach: Reach, label: LabelFacts) -> Reach:
    """How the recall reaches a line once the customer's label is known: confirmed when the same
    rules confirm the labelled line. A label only settles what was unknown: it never takes a line
    out of scope nor lowers its tier (saying "not affected" is the customer's own declaration), so
    a line the label does not confirm (the recall amended since, say) keeps its reach."""
    if reach.tier == "confirmed":
        return reach
    labelled = line_reach(rules, as_labelled(line, label))
    return CONFIRMED if labelled is not None and labelled.tier == "confirmed" else reach


def label_mismatch(alert_id: str, recall_id: str, customer_id: str) -> str | None:
    """Why a label confirmation cannot be about the (recall, customer) alert it names, or None:
    alert ids are derived from the pair, so another id is a wrong record, not a late one."""
    expected = alert_id_for(recall_id, customer_id)
    if alert_id != expected:
        return (
            f"alert {alert_id!r} is not the alert of recall {recall_id!r} and customer "
            f"{customer_id!r} ({expected!r})"
        )
    return None


def build_alert(
    recall: ev.RecallSnapshot,
    customer_id: str,
    lines: Iterable[Line],
    label: LabelFacts | None = None,
) -> AlertDraft | None:
    """One customer's alert for a recall, from all their lines; None when nothing of theirs is
    affected. ``label``: what the customer confirmed from the label (``labelled_reach``).

    Runs once per affected customer of a recall (a million for a big one), hence the plain loops."""
    rules = recall.rules
    affected: list[tuple[Line, Reach, int]] = []
    for line in lines:
        units = 0 if line.cancelled else line.quantity - line.returned_quantity
        if units <= 0:
            continue
        reach = line_reach(rules, line)
        if reach is not None:
            if label is not None:
                reach = labelled_reach(rules, line, reach, label)
            affected.append((line, reach, units))
    if not affected:
        return None
    if len(affected) > 1:
        affected.sort(key=_purchase_order)
    confirmed, admin, total, basis = False, None, 0, []
    for line, reach, units in affected:
        confirmed = confirmed or reach.tier == "confirmed"
        admin = admin or line.business_account_admin_id
        total += units
        basis.append((line.line_id, units, line.lot, line.serial, reach.tier))
    tier: ev.AlertTier = "confirmed" if confirmed else "possibly_affected"
    return AlertDraft(
        alert_id_for(recall.recall_id, customer_id),
        customer_id,
        recall,
        tier,
        tuple(affected),
        admin,
        _fingerprint(tier, basis),
        total,
    )


def _purchase_order(affected: tuple[Line, Reach, int]) -> tuple[datetime, str]:
    return affected[0].placed_at, affected[0].line_id


def alert_event_body(
    draft: AlertDraft, alert_version: int, recall_content: orjson.Fragment
) -> bytes:
    """The JSON body of ``alert.raised.v1`` / ``alert.updated.v1`` for a draft: ``{"alert":
    AlertState}``, encoded without building the model (datetimes in UTC as pydantic writes them,
    money as strings)."""
    return orjson.dumps(
        {"alert": draft.document(alert_version, recall_content)}, option=orjson.OPT_UTC_Z
    )


def _fingerprint(tier: str, lines: list[tuple]) -> str:
    return hashlib.sha256(orjson.dumps([tier, lines])).hexdigest()


def scope_fingerprint(state: ev.AlertState) -> str:
    """What makes an alert 'changed' for the customer: its tier and affected lines and units."""
    return _fingerprint(
        state.tier, [(x.line_id, x.units, x.lot, x.serial, x.tier) for x in state.lines]
    )


@dataclass(frozen=True)
class Previous:
    alert_version: int
    status: str
    fingerprint: str
    recall_version: int


Change = Literal["raise", "update", "withdraw", "none"]


def decide(previous: Previous | None, draft: AlertDraft | None, recall_version: int) -> Change:
    """The difference between what was announced and what is true now."""
    if draft is None:
        return "withdraw" if previous is not None and previous.status == "open" else "none"
    if previous is None or previous.status != "open":
        return "raise"
    if previous.fingerprint != draft.fingerprint or previous.recall_version != recall_version:
        return "update"
    return "none"


def next_version(previous: Previous | None, draft: AlertDraft) -> int:
    """The alert version moves when the customer's scope changes (a new notice is due), not for
    wording."""
    if previous is None:
        return 1
    if previous.status != "open" or previous.fingerprint != draft.fingerprint:
        return previous.alert_version + 1
    return previous.alert_version


class Announced(NamedTuple):
    """A new alert a pass announced (sent straight to alerts.v1 as alert version 1) whose row was
    never committed: its pass failed or was abandoned after sending. Consumers may hold it, or may
    never have received it."""

    fingerprint: str
    tier: str
    recall_version: int

    @property
    def previous(self) -> Previous:
        return Previous(1, "open", self.fingerprint, self.recall_version)


CatchUp = Literal["resend", "update", "withdraw"]


def catch_up(announced: Announced, draft: AlertDraft | None, recall_version: int) -> CatchUp:
    """What a later pass sends about an announced alert so every consumer ends with what is true
    now.

    Nothing of the customer's is reached any more: withdraw it (a consumer that never got it ignores
    the withdrawal). The same content: send the same event again, under the same id (a consumer that
    has it drops the repeat, one that never got it takes it). Anything else: an update under a new
    event id (``next_version`` of ``announced.previous``), which replaces what the first attempt
    sent."""
    if draft is None:
        return "withdraw"
    if decide(announced.previous, draft, recall_version) == "none":
        return "resend"
    return "update"


# ---------------------------------------------------------------------- order facts that contradict


class LineUnits(NamedTuple):
    """What the purchase index knows of a line, enough to tell whether a return or cancellation
    fits."""

    line_id: str
    order_id: str
    customer_id: str
    quantity: int
    returned_quantity: int
    cancelled: bool

    @property
    def remaining(self) -> int:
        return 0 if self.cancelled else max(self.quantity - self.returned_quantity, 0)


def _not_theirs(line: LineUnits, order_id: str, customer_id: str) -> str | None:
    if line.order_id != order_id:
        return f"line {line.line_id!r} is on order {line.order_id!r}, not {order_id!r}"
    if line.customer_id != customer_id:
        return f"line {line.line_id!r} belongs to another customer than {customer_id!r}"
    return None


def return_refusal(
    line: LineUnits | None, order_id: str, customer_id: str, quantity: int
) -> str | None:
    """Why a return of ``quantity`` units of ``line`` cannot be true, or None when it can.

    A line the index does not know is accepted (nothing contradicts it; the order may predate the
    index). Refused: a line of another order or customer, and more units than remain with the
    customer (the line's quantity less earlier returns; none once cancelled)."""
    if line is None:
        return None
    if reason := _not_theirs(line, order_id, customer_id):
        return reason
    if quantity > line.remaining:
        held = (
            "it was cancelled" if line.cancelled else f"{line.remaining} of {line.quantity} remain"
        )
        return f"return of {quantity} units of line {line.line_id!r}, but {held}"
    return None


def cancellation_refusal(
    lines: Iterable[LineUnits], order_id: str, customer_id: str, line_ids: list[str] | None
) -> str | None:
    """Why a cancellation (of ``line_ids``, or of the whole order when None) cannot be true, or
    None.

    ``lines`` are the known lines among those named (or of the order). Refused: a line of another
    order or customer, and a named line already returned in full (nothing remains to cancel).
    Cancelling a line again is a repeat, not a contradiction; a whole-order cancellation leaves
    fully returned lines as they are; unknown lines are accepted as for returns."""
    for line in lines:
        if reason := _not_theirs(line, order_id, customer_id):
            return reason
        if line_ids is not None and not line.cancelled and line.remaining == 0:
            return (
                f"cancellation of line {line.line_id!r}, "
                f"but all {line.quantity} units were returned"
            )
    return None


# ---------------------------------------------------------------- stop-sales and shipment holds


class ListingFacts(NamedTuple):
    """A catalog listing as stop-sales see it (GTIN-14s and model keys already normalised)."""

    product_id: str
    parent_product_id: str | None
    gtins: tuple[str, ...]
    model_keys: tuple[str, ...]
    seller_ids: tuple[str, ...]


def _as_sold_now(listing: ListingFacts, seller_id: str, now: datetime) -> list[Line]:
    """The order lines a sale of the listing could become, one per identifier it carries (a rule's
    identifiers are alternatives, its other constraints do not depend on which one matched): so the
    listing is judged by the very rules that match order lines."""
    base = Line(
        line_id="",
        order_id="",
        customer_id="",
        product_id=listing.product_id,
        title="",
        gtin=None,
        model_number=None,
        seller_id=seller_id,
        quantity=1,
        returned_quantity=0,
        cancelled=False,
        unit_price=Decimal(0),
        currency="XXX",
        lot=None,
        serial=None,
        placed_at=now,
    )
    return [
        base,
        *(base._replace(gtin=g) for g in listing.gtins),
        *(base._replace(model_number=m) for m in listing.model_keys),
    ]


def merge_reaches(reaches: Iterable[Reach | None]) -> Reach | None:
    """Several ways to reach one thing combine like rules (OR): confirmed wins, otherwise possibly
    affected with everything any of them could not check."""
    possible = [r for r in reaches if r is not None]
    if not possible:
        return None
    if any(r.tier == "confirmed" for r in possible):
        return CONFIRMED
    return Reach("possibly_affected", tuple(dict.fromkeys(u for r in possible for u in r.unknown)))


def listing_reach(
    rules: list[ev.ScopeRule], listing: ListingFacts, seller_id: str, now: datetime
) -> Reach | None:
    """How a recall's rules reach one seller's listing, for a sale now. A variant is reached through
    its parent when a rule names the parent in ``parent_product_ids`` (a variant listed after the
    recall was published, too). A listing knows no lot, serial or dates: a rule constrained on them
    makes it possibly affected."""
    lines = _as_sold_now(listing, seller_id, now)
    reaches = [line_reach(rules, line) for line in lines]
    parent = listing.parent_product_id
    if parent is not None:
        by_parent = [
            rule.model_copy(update={"product_ids": [*rule.product_ids, parent]})
            for rule in rules
            if parent in rule.parent_product_ids
        ]
        if by_parent:  # the variant sold as its parent, which these rules name
            reaches += [line_reach(by_parent, line._replace(product_id=parent)) for line in lines]
    return merge_reaches(reaches)


def offers_reached(
    recall: ev.RecallSnapshot, listings: Iterable[ListingFacts], now: datetime
) -> dict[tuple[str, str], Reach]:
    """Every (product id, seller id) listing the recall stops the sale of, and how."""
    reached: dict[tuple[str, str], Reach] = {}
    for listing in listings:
        for seller_id in listing.seller_ids:
            reach = listing_reach(recall.rules, listing, seller_id, now)
            if reach is not None:
                reached[listing.product_id, seller_id] = reach
    return reached


class CorrectedScope(NamedTuple):
    """An accepted Letter of Compliance: the stock a seller offers of a listing from now on is of
    ``lots`` (any of them), made after ``made_after``, with serials in ``serials`` (inclusive
    (first, last) ranges) and best before a day after ``best_before_after``: each one given is a
    statement about every unit."""

    letter_id: str
    made_after: date | None
    lots: tuple[str, ...]
    serials: tuple[tuple[str, str], ...] = ()
    best_before_after: date | None = None


def _ends_by(window: ev.DateWindow | None, day: date | None) -> bool:
    """The window ends on or before ``day``: nothing dated after ``day`` is in it."""
    return day is not None and window is not None and window.end is not None and window.end <= day


def serials_outside(codes: ev.CodeRule, ranges: Iterable[tuple[str, str]]) -> bool:
    """Every serial in the ranges is known to be outside the rule's codes: no code the rule names
    and no range of it meets a range, compared in the rule's collation. A prefix, or a code that
    cannot be compared, may meet one: not known to be outside."""
    ranges = list(ranges)
    if not ranges or codes.prefixes:
        return False
    c = codes.collation
    for first, last in ranges:
        if any(range_verdict(v, first, last, c) != "out" for v in codes.values):
            return False
        for r in codes.ranges:
            # Disjoint: neither end of ours in theirs, and their start not in ours.
            ends = (first, last)
            if any(range_verdict(end, r.first, r.last, c) != "out" for end in ends):
                return False
            if range_verdict(r.first, first, last, c) != "out":
                return False
    return True


def _rule_leaves_out(rule: ev.ScopeRule, scope: CorrectedScope) -> bool:
    """Whether none of the stock the letter describes is in the rule: every lot declared is known
    to be outside the rule's lots, or every serial range outside its serials, or the rule's
    manufacture (best-before) window ends on or before the day after which everything was made
    (is best before). A rule without such a constraint covers all stock."""
    codes = rule.lots
    if scope.lots and codes is not None and all(codes.verdict(lot) == "out" for lot in scope.lots):
        return True
    if rule.serials is not None and serials_outside(rule.serials, scope.serials):
        return True
    return _ends_by(rule.manufactured, scope.made_after) or _ends_by(
        rule.best_before, scope.best_before_after
    )


def letter_clears(
    rules: list[ev.ScopeRule],
    listing: ListingFacts,
    seller_id: str,
    scope: CorrectedScope,
    now: datetime,
) -> bool:
    """The seller's listing is no longer covered: every rule that reaches it leaves out the stock
    the letter describes."""
    return all(
        _rule_leaves_out(rule, scope)
        for rule in rules
        if listing_reach([rule], listing, seller_id, now) is not None
    )


def cleared_offers(
    recall: ev.RecallSnapshot,
    listings: Iterable[ListingFacts],
    letters: dict[tuple[str, str], CorrectedScope],
    now: datetime,
) -> dict[tuple[str, str], str]:
    """The (product id, seller id) listings an accepted letter takes out of the recall, with the
    letter's id: their stop-sale is lifted (or never declared) while the recall's scope leaves out
    the stock the letter describes; an amendment that covers it again declares it again."""
    by_product = {listing.product_id: listing for listing in listings}
    cleared: dict[tuple[str, str], str] = {}
    for (product_id, seller_id), scope in letters.items():
        listing = by_product.get(product_id)
        if listing is None or seller_id not in listing.seller_ids:
            continue
        if letter_clears(recall.rules, listing, seller_id, scope, now):
            cleared[product_id, seller_id] = scope.letter_id
    return cleared


class Recorded(NamedTuple):
    """What was last announced about a stop-sale or a hold."""

    active: bool  # declared (stop-sale) or held (hold), not lifted or released
    tier: str
    unknown: tuple[str, ...]


Settlement = Literal["declare", "lift"]


K = TypeVar("K", bound=tuple[str, ...])


def settle(
    recorded: dict[K, Recorded], wanted: dict[K, Reach]
) -> list[tuple[K, Settlement, Reach | None]]:
    """What to announce so consumers hold exactly ``wanted``: declare what is new, or reached
    another way than announced; lift what is announced and no longer wanted. ``recorded`` holds the
    keys in question (what is not in ``wanted`` there is lifted). In key order."""
    changes: list[tuple[K, Settlement, Reach | None]] = []
    for key in sorted(recorded.keys() | wanted.keys()):
        before, reach = recorded.get(key), wanted.get(key)
        if reach is not None:
            if before is None or not before.active or (before.tier, before.unknown) != reach:
                changes.append((key, "declare", reach))
        elif before is not None and before.active:
            changes.append((key, "lift", None))
    return changes


def transition_id(kind: str, parts: tuple[str, ...], transitions: int) -> str:
    """Deterministic event id of the n-th announcement about a stop-sale or hold (at most 64
    characters whatever the upstream ids)."""
    return event_id(hashed_event_id(kind, ALERT_NAMESPACE, "\x1f".join(parts)), transitions)
