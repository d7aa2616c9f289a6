"""What the "am I affected?" forms (the alert page's and the public page's) read, free of I/O: the
typed values, bounded and kept as typed so a re-rendered form shows them again; the label's dates,
checked (``YYYY-MM-DD``, what ``<input type="date">`` sends; anything else is named as a bad date,
never a 500); and which dates a recall's scope asks for, so a form shows only those."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Literal, get_args

from recall_shared.events import ScopeRule

DateField = Literal["manufactured_on", "best_before", "expires_on"]
DATE_FIELDS: tuple[DateField, ...] = get_args(DateField)
"""The form fields' names, as in the API (``LabelIn``) and ``label_checks.Typed``."""
TEXT_FIELDS = ("gtin", "lot", "serial")
MAX_TYPED = 200

# Which window of a scope rule each date of the label is compared with (recall_shared.label_check).
WINDOW_OF: dict[DateField, str] = {
    "manufactured_on": "manufactured",
    "best_before": "best_before",
    "expires_on": "expiry",
}
_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class LabelForm:
    typed: dict[str, str]  # every field, trimmed and bounded, as typed ("" when left empty)
    dates: dict[DateField, date] = field(default_factory=dict)
    bad_dates: tuple[DateField, ...] = ()  # typed, but not a date

    def text(self, name: str) -> str | None:
        return self.typed.get(name) or None

    def day(self, name: DateField) -> date | None:
        return self.dates.get(name)

    @property
    def anything(self) -> bool:
        return any(self.typed.values())


def parse_day(value: str) -> date:
    """A day as ``<input type="date">`` sends it; ValueError for anything else (2026-02-30 too)."""
    if not _ISO_DAY.fullmatch(value):
        raise ValueError(f"not a YYYY-MM-DD date: {value!r}")
    return date.fromisoformat(value)


def read(form: Mapping[str, str]) -> LabelForm:
    typed = {k: form.get(k, "").strip()[:MAX_TYPED] for k in (*TEXT_FIELDS, *DATE_FIELDS)}
    dates: dict[DateField, date] = {}
    bad: list[DateField] = []
    for name in DATE_FIELDS:
        if not typed[name]:
            continue
        try:
            dates[name] = parse_day(typed[name])
        except ValueError:
            bad.append(name)
    return LabelForm(typed, dates, tuple(bad))


def dates_asked(rules: Iterable[ScopeRule]) -> tuple[DateField, ...]:
    """The label dates some rule of the scope limits: the ones worth asking for."""
    rules = list(rules)
    return tuple(
        name
        for name in DATE_FIELDS
        if any(getattr(rule, WINDOW_OF[name]) is not None for rule in rules)
    )


def date_inputs(
    asked: Iterable[DateField], form: LabelForm | None, labels: Mapping[str, str]
) -> list[dict[str, str]]:
    """The date inputs a form shows: those the scope asks for, and any the request typed (so a bad
    value is always shown next to its field), each with its label, value and error text."""
    wanted = set(asked) | {n for n in DATE_FIELDS if form is not None and form.typed.get(n)}
    return [
        {
            "name": name,
            "label": labels[f"check.{name}"],
            "value": form.typed.get(name, "") if form else "",
            "error": labels["check.bad_date"] if form and name in form.bad_dates else "",
        }
        for name in DATE_FIELDS
        if name in wanted
    ]
