"""A view write given up by the server's timeouts is counted as a timeout, anything else as an
error; the timeout is a bounded setting."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError, OperationalError

from customer_api.settings import Settings
from customer_api.views import failure_cause


class _DriverError(Exception):
    def __init__(self, sqlstate: str | None) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    ("sqlstate", "cause"),
    [
        ("57014", "timeout"),  # statement_timeout
        ("55P03", "timeout"),  # lock_timeout
        ("P0001", "error"),  # a trigger's RAISE EXCEPTION
        ("08006", "error"),  # the connection failed
        (None, "error"),
    ],
)
def test_the_cause_of_a_failed_view_write(sqlstate: str | None, cause: str) -> None:
    assert failure_cause(OperationalError("INSERT ...", {}, _DriverError(sqlstate))) == cause


def test_an_error_without_a_driver_error_is_an_error() -> None:
    assert failure_cause(OSError("connection reset")) == "error"
    assert failure_cause(DBAPIError("INSERT ...", {}, Exception("no sqlstate"))) == "error"


def test_the_view_write_timeout_is_half_a_second_and_bounded() -> None:
    assert Settings().view_write_timeout_ms == 500
    for bad in (0, 10_001):
        with pytest.raises(ValidationError, match="view_write_timeout_ms"):
            Settings(view_write_timeout_ms=bad)
