"""Which failures are the infrastructure's (wait them out) and which are the record's (isolate, then
dead-letter): the consumer runner's one rule for telling them apart.

A database or broker that is down, restarting, overloaded or refusing a transaction for a
concurrency reason says nothing about the record: retrying it later will work, so the partition
pauses and retries for as long as it takes. Everything else is the record's or the handler's
problem.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import asyncpg
from aiokafka.errors import KafkaError
from sqlalchemy import exc as sa_exc

# SQLSTATE classes that mean "try again later": connection exception, transaction rollback
# (serialization failure, deadlock), insufficient resources, operator intervention (admin shutdown,
# cannot connect now, query cancelled), system error.
_TRANSIENT_SQLSTATE_CLASSES = frozenset({"08", "40", "53", "57", "58"})
_TRANSIENT_SQLSTATES = frozenset(
    {
        "55P03",  # lock not available
        # The schema is behind the code (a migration not run yet, as in a rolling upgrade): no
        # record can change a table's, column's or function's name, so every record would fail
        # alike and be dead-lettered. Waited out, visibly (readiness, the runner's waits).
        "42P01",  # undefined table
        "42703",  # undefined column
        "42883",  # undefined function
    }
)

_SQLALCHEMY_TRANSIENT = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.DisconnectionError,
    sa_exc.TimeoutError,  # pool checkout timed out
)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception, what caused it, what it was raised while handling, and a driver's original."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        if isinstance(current, BaseExceptionGroup):
            todo.extend(current.exceptions)
        for linked in (current.__cause__, current.__context__, getattr(current, "orig", None)):
            if isinstance(linked, BaseException):
                todo.append(linked)


def _is_transient_one(exc: BaseException) -> bool:
    if isinstance(exc, TimeoutError | asyncio.TimeoutError | ConnectionError):
        return True
    if isinstance(exc, OSError):  # refused, reset, unreachable, name resolution
        return True
    if isinstance(exc, KafkaError):
        return bool(getattr(exc, "retriable", False)) or type(exc).__name__ in {
            "KafkaConnectionError",
            "KafkaTimeoutError",
            "NodeNotReadyError",
        }
    if isinstance(exc, asyncpg.InterfaceError):
        # Plain InterfaceError: "connection is closed", pool closing. Its subclasses are the
        # client's verdict on the value or the setup (DataError: cannot encode; configuration).
        return type(exc) is asyncpg.InterfaceError
    if isinstance(exc, asyncpg.PostgresError):
        state = getattr(exc, "sqlstate", None) or ""
        return state[:2] in _TRANSIENT_SQLSTATE_CLASSES or state in _TRANSIENT_SQLSTATES
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, _SQLALCHEMY_TRANSIENT)


def _links(exc: BaseException) -> list[BaseException]:
    """The chain; when the driver's own exception is in it, without SQLAlchemy's wrappers (which
    map a client-side encoding error to InterfaceError, say): the driver's verdict decides."""
    chain = list(_chain(exc))
    if any(isinstance(e, asyncpg.PostgresError | asyncpg.InterfaceError) for e in chain):
        return [e for e in chain if not isinstance(e, sa_exc.SQLAlchemyError)]
    return chain


def is_transient(exc: BaseException) -> bool:
    """True when the failure is the infrastructure's: the record is fine, try again later."""
    return any(_is_transient_one(e) for e in _links(exc))


def describe(exc: BaseException) -> str:
    """A short cause for logs, readiness and metrics labels: the first transient link, else the
    error."""
    for e in _links(exc):
        if _is_transient_one(e):
            return f"{type(e).__name__}: {e}"[:300]
    return f"{type(exc).__name__}: {exc}"[:300]


def cause_label(exc: BaseException) -> str:
    """A bounded metrics label: 'database', 'kafka', 'network' or 'other'."""
    for e in _links(exc):
        if not _is_transient_one(e):
            continue
        if isinstance(e, KafkaError):
            return "kafka"
        if isinstance(e, asyncpg.PostgresError | asyncpg.InterfaceError | sa_exc.SQLAlchemyError):
            return "database"
        return "network"
    return "other"
