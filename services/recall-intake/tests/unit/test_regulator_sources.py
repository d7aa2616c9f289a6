"""How the watcher asks each regulator for a page and reads it, free of I/O."""

from __future__ import annotations

from datetime import date

import httpx
import pytest

from recall_intake.regulator_sources import CPSC, OPENFDA, SAFETY_GATE, _day
from recall_intake.regulator_watcher import retry_after_s


@pytest.mark.parametrize(
    ("text", "day"),
    [
        ("2024-08-01", date(2024, 8, 1)),
        ("2024-08-01T00:00:00", date(2024, 8, 1)),
        ("20120613", date(2012, 6, 13)),
        ("06/13/2012", date(2012, 6, 13)),
        ("yesterday", None),
        (None, None),
    ],
)
def test_record_dates_in_the_feeds_spellings(text: object, day: date | None) -> None:
    assert _day(text) == day


def test_pages_are_asked_from_the_cursor() -> None:
    since = date(2024, 8, 1)
    assert CPSC.params(since, 0, 100) == {"format": "json", "RecallDateStart": "2024-08-01"}
    assert CPSC.params(None, 0, 100) == {"format": "json"}
    assert OPENFDA.params(since, 2, 100) == {
        "search": "report_date:[20240801 TO 99991231]",
        "sort": "report_date:asc",
        "limit": "100",
        "skip": "200",
    }
    assert SAFETY_GATE.params(since, 3, 50) == {
        "page": "3",
        "size": "50",
        "publishedFrom": "2024-08-01",
    }


def test_the_next_page_and_the_end() -> None:
    assert CPSC.next_page([{}], 0, 100) is None  # one unpaginated array
    assert OPENFDA.next_page({"meta": {"results": {"total": 250}}}, 1, 100) == 2
    assert OPENFDA.next_page({"meta": {"results": {"total": 250}}}, 2, 100) is None
    assert SAFETY_GATE.next_page({"content": [], "last": False}, 0, 50) == 1
    assert SAFETY_GATE.next_page({"content": [], "last": True}, 4, 50) is None


def test_a_body_of_the_wrong_shape_is_refused() -> None:
    for source, body in ((CPSC, {"error": "x"}), (OPENFDA, []), (SAFETY_GATE, {"items": []})):
        with pytest.raises(ValueError):
            source.records(body)


def test_retry_after_in_seconds_or_as_a_date() -> None:
    assert retry_after_s(httpx.Response(503, headers={"Retry-After": "7"})) == 7.0
    past = "Wed, 21 Oct 2015 07:28:00 GMT"
    assert retry_after_s(httpx.Response(503, headers={"Retry-After": past})) == 0.0
    assert retry_after_s(httpx.Response(503)) is None
