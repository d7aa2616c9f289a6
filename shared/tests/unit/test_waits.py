"""wait_set: a timed wait for an event that never loses a cancellation."""

from __future__ import annotations

import asyncio
import time

import pytest

from recall_shared.waits import wait_set


async def test_a_cancellation_arriving_as_the_event_is_set_still_cancels() -> None:
    """The loop turn that sets the event also cancels the waiter: the waiter must end cancelled.
    ``asyncio.wait_for`` on Python 3.11 returned normally here (the notifier's claimer then waited
    forever for stages its task group had cancelled)."""
    event = asyncio.Event()
    waiter = asyncio.create_task(wait_set(event, 5))
    await asyncio.sleep(0.01)
    event.set()
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter


async def test_it_returns_true_once_set_and_false_after_the_timeout() -> None:
    event = asyncio.Event()
    started = time.monotonic()
    assert await wait_set(event, 0.05) is False
    assert time.monotonic() - started >= 0.05
    asyncio.get_running_loop().call_later(0.01, event.set)
    assert await wait_set(event, 5) is True
