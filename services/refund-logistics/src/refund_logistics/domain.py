"""Remedy cases, free of I/O: the state machine, what a case waits for and does next, and the refund
amount."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import ClassVar, Literal, get_args

from recall_shared import events as ev
from recall_shared.remedy_states import COMPLETED_CASE_STATES

# (from_state, transition) -> to_state
TRANSITIONS: dict[tuple[str | None, str], str] = {
    (None, "open"): "requested",
    ("requested", "refer_to_seller"): "referred_to_seller",
    ("requested", "issue_label"): "label_issued",
    ("label_issued", "receive_item"): "item_received",
    ("item_received", "issue_refund"): "refunded",
    ("requested", "issue_refund"): "refunded",  # refund on proof of destruction
    ("requested", "ship_replacement"): "replacement_shipped",
    ("requested", "repair"): "repaired",
    ("refunded", "close"): "closed",
    ("replacement_shipped", "close"): "closed",
    ("repaired", "close"): "closed",
    ("requested", "reject"): "rejected",
    ("label_issued", "reject"): "rejected",
}


class IllegalCaseTransition(Exception):
    pass


def apply(state: str | None, transition: str) -> str:
    try:
        return TRANSITIONS[(state, transition)]
    except KeyError:
        raise IllegalCaseTransition(
            f"cannot {transition} a case that is {state or 'new'}"
        ) from None


class CaseConflict(Exception):
    """The command does not fit the case's state (HTTP 409)."""


# ---------------------------------------------------------------------------- what a case waits for

WaitingFor = Literal[
    "recall",  # the recall is not known yet (its event is still on its way)
    "alert",  # the alert is not known yet
    "proof",  # the customer's photo of the destroyed unit
    "review",  # an operator's review of that photo
    "label",  # the carrier, for the return label (the recovery loop asks again)
    "item",  # the returned item, at the warehouse
    "payment",  # the refund intents being paid
    "seller",  # the seller's replacement shipment or repair
    "operator",  # an operator: the payment provider refused a refund
]
WAITING_FOR_VALUES: frozenset[str] = frozenset(get_args(WaitingFor))

# A case waiting for a read model goes on as soon as its recall and alert are both known.
WAITING_FOR_READ_MODEL: tuple[WaitingFor, ...] = ("alert", "recall")


def waits_for_read_model(waiting_for: str | None) -> bool:
    return waiting_for in WAITING_FOR_READ_MODEL


@dataclass(frozen=True)
class CaseFacts:
    """What is known about a case's recall and alert when the case is (re)considered."""

    remedy: str
    customer_id: str
    recall_id: str
    recall_known: bool
    alert_known: bool
    alert_customer_id: str | None = None
    alert_recall_id: str | None = None
    alert_status: str | None = None
    enrolled: bool = False
    consumer_contact: str = ""


@dataclass(frozen=True)
class NextStep:
    """What the case does next: ``wait`` (for ``waiting_for``), ``reject`` or ``refer_to_seller``
    (with ``reason``), or ``issue_label`` (ask the carrier, then wait for the item)."""

    action: Literal["wait", "reject", "refer_to_seller", "issue_label"]
    waiting_for: WaitingFor | None = None
    reason: str | None = None


def next_step(facts: CaseFacts) -> NextStep:
    """A newly opened case (or one whose recall or alert just became known): the checks in order,
    then the remedy's first step."""
    if not facts.recall_known:
        return NextStep("wait", "recall")
    if not facts.alert_known:
        return NextStep("wait", "alert")
    if facts.alert_customer_id != facts.customer_id:
        return NextStep("reject", reason="the alert belongs to another customer")
    if facts.alert_recall_id != facts.recall_id:
        return NextStep("reject", reason="the alert is not for this recall")
    if facts.alert_status == "withdrawn":
        return NextStep("reject", reason="the alert was withdrawn: the purchase is not affected")
    if not facts.enrolled:
        contact = facts.consumer_contact or "the seller"
        return NextStep(
            "refer_to_seller",
            reason=f"The seller handles this remedy directly. Contact: {contact}",
        )
    if facts.remedy == "refund_on_destruction":
        return NextStep("wait", "proof")  # POST /v1/cases/{id}/proof
    if facts.remedy == "refund_with_return":
        return NextStep("issue_label")
    return NextStep("wait", "seller")  # replacement or repair: the seller's fulfilment


def label_failed(transient: bool) -> NextStep:
    """The carrier could not issue the label: try again later (transient), else reject."""
    return NextStep("wait", "label") if transient else NextStep("reject")


def check_proof_accepted(remedy: str, state: str, waiting_for: str | None) -> None:
    """May a first proof of destruction be taken for this case? Raises CaseConflict (or
    IllegalCaseTransition for a case that can no longer be refunded) when not."""
    if remedy != "refund_on_destruction":
        raise CaseConflict(
            f"a proof of destruction is for refund_on_destruction cases; this case is {remedy}"
        )
    apply(state, "issue_refund")  # a closed, rejected or referred case
    if waits_for_read_model(waiting_for):
        raise CaseConflict(f"the case is waiting for its {waiting_for}; try again shortly")


def item_already_received(remedy: str, state: str) -> bool:
    """A repeated item-received webhook: the return was already taken in (or completed)."""
    return remedy == "refund_with_return" and state in ("item_received", "refunded", "closed")


FULFILMENT_TRANSITIONS = {"replacement": "ship_replacement", "repair": "repair"}


def fulfilment_transition(
    remedy: str, kind: str | None, state: str, waiting_for: str | None
) -> str:
    """The transition a seller's fulfilment makes; CaseConflict (or IllegalCaseTransition) when the
    case is not the seller's to fulfil now."""
    transition = FULFILMENT_TRANSITIONS.get(remedy)
    if transition is None:
        raise CaseConflict(f"a {remedy} case is completed by RLS, not by a fulfilment")
    if kind is not None and kind != remedy:
        raise CaseConflict(f"this case asks for a {remedy}, not a {kind}")
    apply(state, transition)
    if waiting_for != "seller":
        raise CaseConflict(f"the case is waiting for its {waiting_for}")
    return transition


def check_rejectable(waiting_for: str | None) -> None:
    if waiting_for == "payment":
        raise CaseConflict("a refund is being paid for this case; it can no longer be rejected")


NOTHING_LEFT_TO_REFUND = "nothing left to refund: the affected units were already refunded"


def nothing_due_rejects(state: str) -> bool:
    """Nothing is left to refund: a case still at ``requested`` is rejected; one further on (an
    item received) keeps its state and only records why nothing was paid."""
    return state == "requested"


Settlement = Literal["pending", "failed", "paid", "not_paying"]


def settlement(statuses: Collection[str], waiting_for: str | None) -> Settlement:
    """Where a case's refunds stand after a payment round: some still ``pending``; the case is
    ``not_paying`` (no longer waiting for payment: settled by another caller); one ``failed`` (an
    operator must look); else all ``paid``."""
    if any(s == "pending" for s in statuses):
        return "pending"
    if waiting_for != "payment":
        return "not_paying"
    if any(s == "failed" for s in statuses):
        return "failed"
    return "paid"


@dataclass(frozen=True)
class LineRefund:
    line_id: str
    amount: Decimal
    currency: str


def refunds_due(
    lines: list[ev.AffectedLine], already_refunded: dict[str, Decimal]
) -> list[LineRefund]:
    """The price paid for the affected units, per line, less what was already refunded; never
    more."""
    due = []
    for line in lines:
        paid = (line.unit_price * line.units).quantize(Decimal("0.01"))
        remaining = paid - already_refunded.get(line.line_id, Decimal("0"))
        if remaining > 0:
            due.append(LineRefund(line.line_id, remaining, line.currency))
    return due


COMPLETED_STATES = COMPLETED_CASE_STATES  # the remedy was delivered (recall_shared.remedy_states)
# The transitions that complete a remedy: their time is when the units count as corrected.
COMPLETING_TRANSITIONS = frozenset({"issue_refund", "ship_replacement", "repair"})


@dataclass(frozen=True)
class Period:
    """A calendar month (UTC), as CPSC's monthly progress report counts."""

    year: int
    month: int

    # Reports start with the system; the last year is the last whose months all end within
    # datetime's range (9999-12 would end in year 10000).
    FIRST_YEAR: ClassVar[int] = 2000
    LAST_YEAR: ClassVar[int] = 9998

    @classmethod
    def parse(cls, text: str) -> Period:
        """``YYYY-MM`` in ASCII digits, a month from 2000-01 to 9998-12; otherwise a ValueError
        naming the text."""
        year_s, _, month_s = text.partition("-")
        if not (
            len(year_s) == 4
            and len(month_s) == 2
            and (year_s + month_s).isascii()
            and (year_s + month_s).isdigit()
            and 1 <= int(month_s) <= 12
        ):
            raise ValueError(f"period must be YYYY-MM, not {text!r}")
        year = int(year_s)
        if not cls.FIRST_YEAR <= year <= cls.LAST_YEAR:
            raise ValueError(
                f"period {text!r} is out of range: the year must be from {cls.FIRST_YEAR} "
                f"to {cls.LAST_YEAR}"
            )
        return cls(year, int(month_s))

    @classmethod
    def containing(cls, moment: datetime) -> Period:
        return cls(moment.year, moment.month)

    @property
    def start(self) -> datetime:
        return datetime(self.year, self.month, 1, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        """Exclusive."""
        return datetime(self.year + (self.month == 12), self.month % 12 + 1, 1, tzinfo=UTC)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


def correction_rate(corrected: int, affected: int) -> Decimal:
    """Units corrected as a percentage of units affected, to one decimal; 0 when nothing is
    affected."""
    if affected <= 0:
        return Decimal("0.0")
    return (Decimal(corrected) * 100 / Decimal(affected)).quantize(Decimal("0.1"))


def incidents_before_and_after(
    at_publication: int | None, to_date: int | None
) -> dict[str, int | None]:
    """Incidents (or injuries) as the CPSC progress report asks: ``before_recall``, what the recall
    stated when it was published; ``since_recall``, what its amendments added since (never below
    0: a corrected count is not an incident undone); ``to_date``, the latest count stated. None
    where the recall never stated a count."""
    if to_date is None and at_publication is None:
        return {"before_recall": None, "since_recall": None, "to_date": None}
    before = at_publication or 0
    latest = to_date if to_date is not None else before
    return {
        "before_recall": at_publication,
        "since_recall": max(latest - before, 0),
        "to_date": max(latest, before),
    }


# ---------------------------------------------------------------------------- proofs of destruction

ProofStatus = Literal["pending_review", "accepted", "rejected"]

# Perceptual hashes (64-bit pHash) this close count as the same photo: a re-encoded, resized or
# lightly cropped copy differs by a few bits, different photos by about 32. Four 16-bit bands
# find every candidate within 3 bits with an index (two hashes 3 bits apart share a band).
HASH_BITS = 64
HASH_BANDS = 4
DUPLICATE_MAX_DISTANCE = HASH_BANDS - 1


def hash_bands(phash: int) -> tuple[int, ...]:
    """The hash cut into HASH_BANDS equal bands, lowest bits first."""
    width = HASH_BITS // HASH_BANDS
    return tuple((phash >> (i * width)) & ((1 << width) - 1) for i in range(HASH_BANDS))


def hash_distance(a: int, b: int) -> int:
    return ((a ^ b) & ((1 << HASH_BITS) - 1)).bit_count()


def is_duplicate(a: int, b: int) -> bool:
    return hash_distance(a, b) <= DUPLICATE_MAX_DISTANCE


def size_problem(width: int, height: int, min_side: int) -> str | None:
    """Why a photo is too small to show a destroyed unit, or None."""
    if min(width, height) < min_side:
        return (
            f"the photo is {width}x{height} pixels; it must be at least {min_side} pixels on its "
            "shorter side"
        )
    return None


def case_value(lines: list[ev.AffectedLine]) -> Decimal:
    """What the affected units cost the customer: the most a case can refund."""
    return sum(
        ((line.unit_price * line.units).quantize(Decimal("0.01")) for line in lines), Decimal("0")
    )


def proof_needs_review(
    flags: Collection[object], value: Decimal, pay_without_review_up_to: Decimal
) -> bool:
    """The review policy: a flagged proof always waits for an operator; an unflagged one pays at
    once when the case is worth at most ``pay_without_review_up_to`` (0: every proof is
    reviewed)."""
    return bool(flags) or value > pay_without_review_up_to or pay_without_review_up_to <= 0


def check_new_proof(
    previous_status: str | None, previous_reason: str | None, same_photo: bool
) -> None:
    """May a photo be taken when the case already has one (``previous_status``)? Only after a
    rejection, and not the rejected photo again. Raises CaseConflict."""
    if previous_status is None:
        return
    if previous_status == "rejected":
        if same_photo:
            raise CaseConflict(
                f"this photo was not accepted ({previous_reason}); please upload a new one"
            )
        return
    if previous_status == "pending_review":
        raise CaseConflict("a proof of destruction was already received and is being reviewed")
    raise CaseConflict("a proof of destruction was already received for this case")


def check_reviewable(waiting_for: str | None, proof_status: str | None) -> None:
    """An operator's decision fits a case whose proof waits for review. Raises CaseConflict."""
    if proof_status is None:
        raise CaseConflict("this case has no proof of destruction to review")
    if waiting_for != "review" or proof_status != "pending_review":
        raise CaseConflict(f"the proof is {proof_status.replace('_', ' ')}, not awaiting review")
