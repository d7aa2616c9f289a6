"""The failure classifier: what is waited out (the infrastructure's) and what is the record's."""

from __future__ import annotations

import asyncpg
import pytest
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaTimeoutError,
    NotLeaderForPartitionError,
    UnknownTopicOrPartitionError,
)
from sqlalchemy import exc as sa_exc

from recall_shared.failures import cause_label, describe, is_transient
from recall_shared.handlers import PermanentError


def wrapped(orig: BaseException) -> sa_exc.DBAPIError:
    """As SQLAlchemy's asyncpg dialect raises it: a DBAPIError whose orig was caused by
    asyncpg's."""
    adapted = Exception(str(orig))
    adapted.__cause__ = orig
    return sa_exc.DBAPIError("SELECT 1", {}, adapted)


def _caused(orig: BaseException) -> Exception:
    adapted = Exception(str(orig))
    adapted.__cause__ = orig
    return adapted


def pg(cls: type[asyncpg.PostgresError]) -> asyncpg.PostgresError:
    return cls("simulated")


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionRefusedError(111, "Connection refused"),
        ConnectionResetError(104, "reset by peer"),
        OSError(113, "No route to host"),
        TimeoutError(),
        TimeoutError(),
        KafkaConnectionError("broker down"),
        KafkaTimeoutError(),
        NotLeaderForPartitionError(),
        UnknownTopicOrPartitionError(),  # retriable: metadata not propagated yet
        asyncpg.InterfaceError("connection is closed"),
        pg(asyncpg.AdminShutdownError),  # 57P01: the server is shutting down
        pg(asyncpg.CannotConnectNowError),  # 57P03: starting up
        pg(asyncpg.SerializationError),  # 40001
        pg(asyncpg.DeadlockDetectedError),  # 40P01
        pg(asyncpg.TooManyConnectionsError),  # 53300
        pg(asyncpg.QueryCanceledError),  # 57014: statement timeout
        pg(asyncpg.LockNotAvailableError),  # 55P03
        pg(asyncpg.UndefinedTableError),  # 42P01: the schema is behind the code
        pg(asyncpg.UndefinedColumnError),  # 42703
        pg(asyncpg.UndefinedFunctionError),  # 42883
        wrapped(pg(asyncpg.AdminShutdownError)),
        wrapped(ConnectionRefusedError(111, "refused")),
        sa_exc.OperationalError("SELECT 1", {}, Exception("server closed the connection")),
        sa_exc.TimeoutError("QueuePool limit reached"),
        ExceptionGroup("many", [ValueError("x"), ConnectionResetError()]),
    ],
    ids=lambda e: type(e).__name__,
)
def test_infrastructure_failures_are_transient(exc: BaseException) -> None:
    assert is_transient(exc)


@pytest.mark.parametrize(
    "exc",
    [
        ValueError("bad value"),
        KeyError("missing"),
        RuntimeError("a bug"),
        PermanentError("declared rejection"),
        pg(asyncpg.UniqueViolationError),  # 23505
        pg(asyncpg.SyntaxOrAccessError),  # 42000: other errors of the class are the code's
        pg(asyncpg.CharacterNotInRepertoireError),  # 22021: a NUL in text
        pg(asyncpg.NumericValueOutOfRangeError),  # 22003
        wrapped(pg(asyncpg.ForeignKeyViolationError)),
        sa_exc.IntegrityError("INSERT", {}, Exception("duplicate key")),
        # The client's verdict on a value it cannot encode, raw and as SQLAlchemy wraps it.
        asyncpg.exceptions._base.DataError("invalid input for query argument $1"),
        sa_exc.InterfaceError(
            "INSERT", {}, _caused(asyncpg.exceptions._base.DataError("cannot encode"))
        ),
        asyncpg.exceptions._base.ClientConfigurationError("bad setup"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_the_records_failures_are_not(exc: BaseException) -> None:
    assert not is_transient(exc)


def test_a_transient_cause_found_through_the_chain() -> None:
    try:
        try:
            raise ConnectionResetError(104, "reset")
        except ConnectionResetError as inner:
            raise RuntimeError("handler failed") from inner
    except RuntimeError as outer:
        assert is_transient(outer)
        assert describe(outer).startswith("ConnectionResetError")
        assert cause_label(outer) == "network"


def test_cause_labels_are_bounded() -> None:
    assert cause_label(KafkaConnectionError()) == "kafka"
    assert cause_label(wrapped(pg(asyncpg.AdminShutdownError))) == "database"
    assert cause_label(ConnectionRefusedError()) == "network"
    assert cause_label(ValueError()) == "other"
