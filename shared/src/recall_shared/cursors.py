"""Page cursors: ``<microseconds since the epoch>_<id>``, the position after which the next page
starts.

Every string that matches :data:`CURSOR_PATTERN` is a valid position (a page after it may be empty),
so the OpenAPI pattern is the whole contract: a client, or a fuzzer, that sends a string of that
shape gets a page, and anything else is a 422 before it reaches the query.
"""

from __future__ import annotations

from datetime import UTC, datetime

CURSOR_PATTERN = r"^[0-9]{1,16}_[A-Za-z0-9][A-Za-z0-9._:@-]{0,199}$"  # the id: http.ID_PATTERN
CURSOR_MAX_LENGTH = 217


class BadCursor(ValueError):
    """Not a cursor of this shape."""


def encode_cursor(created_at: datetime, item_id: str) -> str:
    return f"{int(created_at.timestamp() * 1_000_000)}_{item_id}"


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The (created_at, id) a cursor stands for; :class:`BadCursor` for another shape."""
    ts, sep, item_id = cursor.partition("_")
    if not sep or not ts.isdigit() or len(ts) > 16 or not item_id:
        raise BadCursor("cursor: not a cursor this API returned")
    return datetime.fromtimestamp(int(ts) / 1_000_000, UTC), item_id
