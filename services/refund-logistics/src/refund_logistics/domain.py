"""Remedy cases, free of I/O: the state machine and the refund amount."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import ClassVar

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
