"""Remedy cases, free of I/O: the state machine and the refund amount."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from recall_shared import events as ev

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
        raise IllegalCaseTransition(f"cannot {transition} a case that is {state or 'new'}") from None


@dataclass(frozen=True)
class LineRefund:
    line_id: str
    amount: Decimal
    currency: str


def refunds_due(lines: list[ev.AffectedLine], already_refunded: dict[str, Decimal]) -> list[LineRefund]:
    """The price paid for the affected units, per line, less what was already refunded; never more."""
    due = []
    for line in lines:
        paid = (line.unit_price * line.units).quantize(Decimal("0.01"))
        remaining = paid - already_refunded.get(line.line_id, Decimal("0"))
        if remaining > 0:
            due.append(LineRefund(line.line_id, remaining, line.currency))
    return due
