"""The mail house's return file (notifier.letter_returns.parse_return_file): what is read, and what
is refused with the row and the field named."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from notifier.letter_returns import (
    DEFAULT_REASON,
    ReturnedLetter,
    ReturnFileError,
    parse_return_file,
)


def test_rows_are_read_with_their_dates_and_reasons() -> None:
    data = (
        "\ufeffletter_id, returned_on ,reason,extra\r\n"
        "letters-a-000001,2026-12-04,moved away,x\r\n"
        "letters-a-000002,,,\r\n"
        "letters-a-000003,2026-12-05T10:30:00+01:00,refused,\r\n"
    ).encode()
    assert parse_return_file(data) == [
        ReturnedLetter("letters-a-000001", datetime(2026, 12, 4, tzinfo=UTC), "moved away"),
        ReturnedLetter("letters-a-000002", None, DEFAULT_REASON),
        ReturnedLetter(
            "letters-a-000003",
            datetime(2026, 12, 5, 10, 30, tzinfo=timezone(timedelta(hours=1))),
            "refused",
        ),
    ]


def test_only_the_letter_id_is_required() -> None:
    assert parse_return_file(b"letter_id\nletters-a-000001\n") == [
        ReturnedLetter("letters-a-000001", None, DEFAULT_REASON)
    ]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"id,reason\nletters-a-000001,x\n", "no letter_id column"),
        (b"", "no letter_id column"),
        (b"letter_id,reason\nletters-a-000001,x\n,y\n", "row 3: letter_id is empty"),
        (b"letter_id,returned_on\nletters-a-1,04.12.2026\n", "row 2: returned_on '04.12.2026'"),
        (b"letter_id\n" + b"x" * 101 + b"\n", "row 2: letter_id is longer than 100"),
        (b"letter_id\n\xff\n", "not UTF-8"),
    ],
)
def test_a_file_that_is_no_return_file_is_refused_naming_the_field(
    data: bytes, message: str
) -> None:
    with pytest.raises(ReturnFileError, match=message):
        parse_return_file(data)
