"""The regulators the watcher polls, free of I/O: how to ask one page, read its records, find the
next page, and date a record (the cursor).

- **CPSC** Recalls REST API (``.../RestWebServices/Recall?format=json&RecallDateStart=...``): one
  unpaginated JSON array; records dated by ``RecallDate`` (or ``published`` in normalised records).
- **openFDA** enforcement (``.../enforcement.json``): ``search=report_date:[FROM TO 99991231]``,
  ``sort=report_date:asc``, paged by ``skip``/``limit``; ``meta.results.total`` says when to stop.
- **EU Safety Gate**: ``publishedFrom``, ``page``, ``size``; a page is ``{"content": [...], "last":
  bool}`` (the paging of the portal's search; the records are the normalised ones the project
  imports).

A pass asks from the newest date seen so far, inclusive: records of that day come again and the
importer skips them (``regulator_records``), as it does a record the regulator re-published.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

PAGE_SIZE = 100


@dataclass(frozen=True)
class Source:
    name: str
    format: str  # an importer format (recall_intake.importers.parsers.FORMATS)
    params: Callable[[date | None, int, int], dict[str, str]]  # (since, page, size)
    records: Callable[[Any], list[Any]]
    next_page: Callable[[Any, int, int], int | None]  # (document, page, size)
    dated: Callable[[Any], date | None]


def _day(value: Any) -> date | None:
    """A record's date in the spellings the feeds use: 2024-08-01, 2024-08-01T00:00:00, 20120613,
    06/13/2012; None when unreadable (such a record does not move the cursor)."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    for fmt, width in (("%Y-%m-%d", 10), ("%Y%m%d", 8), ("%m/%d/%Y", 10)):
        try:
            return datetime.strptime(text[:width], fmt).date()
        except ValueError:
            continue
    return None


def _cpsc_params(since: date | None, page: int, size: int) -> dict[str, str]:
    params = {"format": "json"}
    if since is not None:
        params["RecallDateStart"] = since.isoformat()
    return params


def _list_of(doc: Any) -> list[Any]:
    if not isinstance(doc, list):
        raise ValueError(f"expected a JSON array, got {type(doc).__name__}")
    return doc


def _cpsc_date(raw: Any) -> date | None:
    if not isinstance(raw, dict):
        return None
    return _day(raw.get("RecallDate") or raw.get("published"))


def _fda_params(since: date | None, page: int, size: int) -> dict[str, str]:
    start = since.strftime("%Y%m%d") if since else "19000101"
    return {
        "search": f"report_date:[{start} TO 99991231]",
        "sort": "report_date:asc",
        "limit": str(size),
        "skip": str(page * size),
    }


def _fda_records(doc: Any) -> list[Any]:
    if not isinstance(doc, dict) or not isinstance(doc.get("results"), list):
        raise ValueError("expected {meta, results: [...]}")
    return doc["results"]


def _fda_next(doc: Any, page: int, size: int) -> int | None:
    total = doc.get("meta", {}).get("results", {}).get("total", 0)
    return page + 1 if (page + 1) * size < total else None


def _fda_date(raw: Any) -> date | None:
    if not isinstance(raw, dict):
        return None
    return _day(raw.get("report_date") or raw.get("report-date"))


def _gate_params(since: date | None, page: int, size: int) -> dict[str, str]:
    params = {"page": str(page), "size": str(size)}
    if since is not None:
        params["publishedFrom"] = since.isoformat()
    return params


def _gate_records(doc: Any) -> list[Any]:
    if not isinstance(doc, dict) or not isinstance(doc.get("content"), list):
        raise ValueError("expected {content: [...], last}")
    return doc["content"]


def _gate_next(doc: Any, page: int, size: int) -> int | None:
    return None if doc.get("last", True) else page + 1


def _gate_date(raw: Any) -> date | None:
    return _day(raw.get("published")) if isinstance(raw, dict) else None


CPSC = Source("cpsc", "cpsc", _cpsc_params, _list_of, lambda doc, page, size: None, _cpsc_date)
OPENFDA = Source("openfda", "openfda", _fda_params, _fda_records, _fda_next, _fda_date)
SAFETY_GATE = Source(
    "safety-gate", "safety-gate", _gate_params, _gate_records, _gate_next, _gate_date
)
SOURCES = {s.name: s for s in (CPSC, OPENFDA, SAFETY_GATE)}
