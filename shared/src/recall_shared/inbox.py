"""Inbox: the consumer's record of event ids it has applied, written in the effect's own transaction."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

_CLAIM = text(
    "INSERT INTO inbox (consumer_group, event_id) VALUES (:group, :event_id) "
    "ON CONFLICT DO NOTHING RETURNING event_id"
)


async def claim(session: AsyncSession, consumer_group: str, event_id: str) -> bool:
    """True the first time this group sees the event id; False for a redelivery.

    Must run inside the transaction that applies the event: if that transaction rolls back, so does the
    claim, and the redelivered event is applied then.
    """
    result = await session.execute(_CLAIM, {"group": consumer_group, "event_id": event_id})
    return result.first() is not None
