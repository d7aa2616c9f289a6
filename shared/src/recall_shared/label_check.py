"""The "am I affected?" check: what a customer reads on the label (lot, serial, dates) against
a recall's scope, free of I/O, with the same comparisons as matching (``CodeRule.verdict``,
``DateWindow.contains``, ``model_key``).

The answer is ``confirmed`` (a rule holds for everything the label says), ``not_affected`` (every
rule that names the product is contradicted by something known), or ``cannot_tell`` with what is
missing (the lot the rule needs was not typed, a value cannot be compared, the sale is limited to a
seller or a purchase window nobody told us). Rules combine with OR, as in matching.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

from recall_shared.events import ScopeRule
from recall_shared.identifiers import model_key, normalise_gtin

Answer = Literal["confirmed", "not_affected", "cannot_tell"]


@dataclass(frozen=True)
class Label:
    """What is known of one unit: typed from its label, or from the customer's own order line."""

    gtin: str | None = None  # any common spelling; normalised to GTIN-14
    product_id: str | None = None
    model_number: str | None = None
    lot: str | None = None
    serial: str | None = None
    manufactured_on: date | None = None
    best_before: date | None = None
    expires_on: date | None = None
    seller_id: str | None = None
    purchased_on: date | None = None

    @property
    def gtin14(self) -> str | None:
        return normalise_gtin(self.gtin).gtin14 if self.gtin else None


@dataclass(frozen=True)
class LabelAnswer:
    answer: Answer
    unknown: tuple[str, ...] = field(default=())  # what would settle a cannot_tell


def _names_product(rule: ScopeRule, label: Label) -> bool | None:
    """True when the rule names this product, False when what we know says it does not, None
    when nothing known can say (a rule by marketplace product id, a label without one)."""
    known: list[bool] = []
    if label.product_id is not None and rule.product_ids:
        known.append(label.product_id in rule.product_ids)
    if label.gtin14 is not None and rule.gtins:
        known.append(label.gtin14 in rule.gtins)
    if (key := model_key(label.model_number)) and rule.model_numbers:
        known.append(key in {model_key(m) for m in rule.model_numbers})
    if any(known):
        return True
    return False if known else None


def check_rule(rule: ScopeRule, label: Label) -> LabelAnswer:
    named = _names_product(rule, label)
    if named is False:
        return LabelAnswer("not_affected")
    unknown: list[str] = [] if named else ["product"]
    if rule.seller_ids:
        if label.seller_id is None:
            unknown.append("seller")
        elif label.seller_id not in rule.seller_ids:
            return LabelAnswer("not_affected")
    for name, codes, code in (
        ("lot", rule.lots, label.lot),
        ("serial", rule.serials, label.serial),
    ):
        if codes is None:
            continue
        verdict = "unknown" if not code else codes.verdict(code)
        if verdict == "out":
            return LabelAnswer("not_affected")
        if verdict == "unknown":
            unknown.append(name)
    for name, window, day in (
        ("purchase date", rule.purchased, label.purchased_on),
        ("manufacture date", rule.manufactured, label.manufactured_on),
        ("best-before date", rule.best_before, label.best_before),
        ("expiry date", rule.expiry, label.expires_on),
    ):
        if window is None:
            continue
        if day is None:
            unknown.append(name)
        elif not window.contains(day):
            return LabelAnswer("not_affected")
    return LabelAnswer("cannot_tell", tuple(unknown)) if unknown else LabelAnswer("confirmed")


def check(rules: Iterable[ScopeRule], label: Label) -> LabelAnswer:
    """The label against every rule: a confirming rule wins, an open one leaves it open."""
    open_: list[str] = []
    undecided = False
    for rule in rules:
        answer = check_rule(rule, label)
        if answer.answer == "confirmed":
            return answer
        if answer.answer == "cannot_tell":
            undecided = True
            open_ += [u for u in answer.unknown if u not in open_]
    return LabelAnswer("cannot_tell", tuple(open_)) if undecided else LabelAnswer("not_affected")
