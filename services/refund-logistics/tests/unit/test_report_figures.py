"""The monthly report's incidents before and after the recall (domain.incidents_before_and_after),
free of I/O."""

from __future__ import annotations

import pytest

from refund_logistics.domain import incidents_before_and_after


@pytest.mark.parametrize(
    ("at_publication", "to_date", "figures"),
    [
        (3, 5, {"before_recall": 3, "since_recall": 2, "to_date": 5}),
        (3, 3, {"before_recall": 3, "since_recall": 0, "to_date": 3}),
        # corrected down by an amendment: not an incident undone, nothing "since"
        (3, 2, {"before_recall": 3, "since_recall": 0, "to_date": 3}),
        # stated only by an amendment: none known before, all of them since
        (None, 4, {"before_recall": None, "since_recall": 4, "to_date": 4}),
        # stated at publication, dropped from the latest version: the publication's count stands
        (2, None, {"before_recall": 2, "since_recall": 0, "to_date": 2}),
        (None, None, {"before_recall": None, "since_recall": None, "to_date": None}),
        (0, 0, {"before_recall": 0, "since_recall": 0, "to_date": 0}),
    ],
)
def test_incidents_before_and_since_the_recall(
    at_publication: int | None, to_date: int | None, figures: dict[str, int | None]
) -> None:
    assert incidents_before_and_after(at_publication, to_date) == figures
