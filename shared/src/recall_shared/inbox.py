"""Inbox: the consumer's record of event ids it has applied, written in the effect's own
transaction."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

_CLAIM = text(
    "INSERT INTO inbox (consumer_group, event_id) VALUES (:group, :event_id) "
    "ON CONFLICT DO NOTHING RETURNING event_id"
)


async def claim(session: AsyncSession, consumer_group: str, event_id: str) -> bool:
    """True the first time this group sees the event id; False for a redelivery.

    Must run inside the transaction that applies the event: if that transaction rolls back, so does
    the claim, and the redelivered event is applied then.
    """
    result = await session.execute(_CLAIM, {"group": consumer_group, "event_id": event_id})
    return result.first() is not None


_CLAIM_MANY = text(
    "INSERT INTO inbox (consumer_group, event_id) "
    "SELECT :group, unnest(CAST(:event_ids AS varchar[])) "
    "ON CONFLICT DO NOTHING RETURNING event_id"
)


async def claim_many(session: AsyncSession, consumer_group: str, event_ids: list[str]) -> set[str]:
    """The ids of ``event_ids`` this group sees for the first time, claimed in one statement; the
    others are redeliveries. Same transaction rule as :func:`claim`."""
    if not event_ids:
        return set()
    result = await session.execute(_CLAIM_MANY, {"group": consumer_group, "event_ids": event_ids})
    return {row[0] for row in result}


_PURGE = text(
    # ctid = ANY(ARRAY(...)): a TID scan of just these rows (an IN subquery may plan as a join over
    # the table)
    "DELETE FROM inbox WHERE ctid = ANY(ARRAY("
    "SELECT ctid FROM inbox WHERE processed_at < :before LIMIT :batch))"
)


async def purge(engine: AsyncEngine, before: datetime, batch: int = 10_000) -> int:
    """Forget event ids applied before ``before``, in short transactions of ``batch`` rows; returns
    how many.

    Redeliveries come within minutes (uncommitted offsets, relay retries, redrives of recent dead
    letters), so a retention of weeks keeps every duplicate that can still arrive while the table
    stays small. An event replayed after its id was forgotten is applied again: handlers are
    idempotent on natural keys."""
    total = 0
    while True:
        async with engine.begin() as conn:
            deleted = (await conn.execute(_PURGE, {"before": before, "batch": batch})).rowcount or 0
        total += deleted
        if deleted < batch:
            return total
