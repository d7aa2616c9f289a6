"""The checkout guard's decision, free of I/O: may this line be sold (or shipped) now?

A line to sell is judged by the very rules that match order lines (``domain.line_reach``), as if it
were an order line placed at the moment of the check: a recall that would confirm it blocks it, one
that could reach it only through what the caller did not say (its lot, serial or dates) asks for a
check of the unit, and no recall reaching it allows it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from purchase_matcher.domain import Line, Reach, line_identifiers, line_reach
from recall_shared import events as ev

Verdict = Literal["allowed", "blocked", "needs_check"]


@dataclass(frozen=True)
class SaleLine:
    """A line the checkout or the warehouse is about to sell or ship (GTIN already as GTIN-14)."""

    product_id: str
    seller_id: str
    gtin: str | None = None
    model_number: str | None = None
    lot: str | None = None
    serial: str | None = None
    manufactured_on: date | None = None
    best_before: date | None = None
    expires_on: date | None = None

    def as_order_line(self, now: datetime) -> Line:
        """The order line this sale would become: what the matching rules read."""
        return Line(
            line_id="",
            order_id="",
            customer_id="",
            product_id=self.product_id,
            title="",
            gtin=self.gtin,
            model_number=self.model_number,
            seller_id=self.seller_id,
            quantity=1,
            returned_quantity=0,
            cancelled=False,
            unit_price=Decimal(0),
            currency="XXX",
            lot=self.lot,
            serial=self.serial,
            placed_at=now,
            manufactured_on=self.manufactured_on,
            best_before=self.best_before,
            expires_on=self.expires_on,
        )


@dataclass(frozen=True)
class RecallHit:
    recall_id: str
    recall_version: int
    title: str
    tier: ev.AlertTier
    unknown_attributes: tuple[str, ...]

    @property
    def reason(self) -> str:
        if self.tier == "confirmed":
            return f"in the scope of recall {self.title!r}"
        return (
            f"may be in the scope of recall {self.title!r}: check the unit's "
            f"{', '.join(self.unknown_attributes)}"
        )


@dataclass(frozen=True)
class LineVerdict:
    verdict: Verdict
    recalls: tuple[RecallHit, ...]


def sale_identifiers(lines: Iterable[SaleLine]) -> dict:
    """The identifiers that find the recalls that could reach these lines (as for order lines)."""
    return line_identifiers(line.as_order_line(datetime.min) for line in lines)


def judge(line: SaleLine, recalls: Iterable[ev.RecallSnapshot], now: datetime) -> LineVerdict:
    """One line against the active recalls that name one of its identifiers. Blocked when any
    recall confirms it, else a check when any could reach it, else allowed; the recalls that
    reach it come with how, in recall id order."""
    order_line = line.as_order_line(now)
    hits: list[RecallHit] = []
    for recall in sorted(recalls, key=lambda r: r.recall_id):
        reach: Reach | None = line_reach(recall.rules, order_line)
        if reach is not None:
            hits.append(
                RecallHit(
                    recall.recall_id,
                    recall.version,
                    recall.content.title,
                    reach.tier,
                    reach.unknown,
                )
            )
    if any(h.tier == "confirmed" for h in hits):
        verdict: Verdict = "blocked"
    elif hits:
        verdict = "needs_check"
    else:
        verdict = "allowed"
    return LineVerdict(verdict, tuple(hits))
