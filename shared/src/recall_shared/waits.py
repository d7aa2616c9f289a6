"""Waiting for an :class:`asyncio.Event` with a time limit, without losing a cancellation.

On Python 3.11 ``asyncio.wait_for(event.wait(), t)`` returns normally when the event is set in the
same loop turn as the waiting task is cancelled (python/cpython#86296): the cancellation is lost.
The notifier's claimer, cancelled that way by its failing task group after a database outage,
went on waiting for senders that were gone, and sent nothing again. ``asyncio.timeout`` keeps it.
"""

from __future__ import annotations

import asyncio
import contextlib


async def wait_set(event: asyncio.Event, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for ``event``; True if it is set."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            await event.wait()
    return event.is_set()
