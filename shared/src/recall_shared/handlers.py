"""What a consumer runs for an event: a handler of one event, or a batch handler of a run of them.

The runner applies a partition's records in batches, each batch in ONE database transaction (inbox
claims, effects, commit; the Kafka offset after). Inside a batch, each event goes to its handler in
partition order. Consecutive events whose entry is the same :class:`BatchHandler` go to it in one
call, so a hot consumer can write a thousand alerts with one statement instead of a thousand.

A batch handler must leave the database exactly as calling the one-event form for each delivery in
order would: several deliveries may touch the same row (an alert raised, then updated, in one
batch), so bulk upserts keep the last (highest version) per key. The runner may call it with any
contiguous slice of a batch (it bisects a failing batch to isolate a poison record), so it must not
assume a delivery's neighbours are present.

A handler raises :class:`PermanentError` for input it will never accept (a declared domain
rejection): the record goes to the dead-letter topic at once. Any other exception is classified by
:mod:`recall_shared.failures`: infrastructure failures are waited out, others retried a bounded
number of times, then dead-lettered.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeAlias, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from recall_shared.envelope import Envelope
from recall_shared.events import Event

E = TypeVar("E", bound=Event)


class PermanentError(Exception):
    """Raised by a handler for input it will never accept: dead-lettered without retries."""


@dataclass(frozen=True, slots=True)
class Delivery(Generic[E]):
    """One validated event and the envelope it came in."""

    event: E
    envelope: Envelope


Handler: TypeAlias = Callable[[AsyncSession, E, Envelope], Awaitable[None]]
"""Applies one event inside the batch's transaction."""


@dataclass(frozen=True)
class BatchHandler(Generic[E]):
    """Applies a run of consecutive deliveries in one call, inside the batch's transaction."""

    handle_many: Callable[[AsyncSession, Sequence[Delivery[E]]], Awaitable[None]]
    name: str = ""

    async def __call__(self, session: AsyncSession, event: E, envelope: Envelope) -> None:
        await self.handle_many(session, [Delivery(event, envelope)])


def batched(
    handle_many: Callable[[AsyncSession, Sequence[Delivery[E]]], Awaitable[None]],
) -> BatchHandler[E]:
    """Declare a batch form; register the same object for every event type it applies."""
    return BatchHandler(handle_many, getattr(handle_many, "__name__", ""))


HandlerMap: TypeAlias = Mapping[type[Event], Handler[Any] | BatchHandler[Any]]
"""Event class -> what applies it. Types not in the map are skipped (counted and logged)."""
