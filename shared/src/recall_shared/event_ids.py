"""Deterministic event ids (the CloudEvents ``id``, ``ce_id``): the one recipe every producer uses.

An event's id is made of what identifies the change it reports (the aggregate, its version or
transition, the event type), never of the moment it is emitted: re-emitting the same change after a
retry or a redelivery then gives the same id, which the outbox (``ON CONFLICT (event_id) DO
NOTHING``) and every consumer's inbox turn into a no-op.
"""

from __future__ import annotations

import uuid

MAX_LENGTH = 64  # the inbox's and the outbox's event_id columns


def event_id(*parts: str | int) -> str:
    """The parts joined by ``:``, e.g. ``event_id("api-key", key_id, "issued")`` or
    ``event_id(recall_id, version, event.event_type)``."""
    if not parts:
        raise ValueError("an event id needs at least one part")
    joined = ":".join(str(part) for part in parts)
    if len(joined) > MAX_LENGTH:
        raise ValueError(
            f"event id {joined[:40]!r}... is {len(joined)} characters, over {MAX_LENGTH}; "
            "use hashed_event_id"
        )
    return joined


def hashed_event_id(kind: str, namespace: uuid.UUID, name: str) -> str:
    """``<kind>:<uuid5(namespace, name)>``: for an id whose natural parts are long or contain ``:``
    (the UUID keeps it short and of fixed shape)."""
    return event_id(kind, str(uuid.uuid5(namespace, name)))
