"""Telling the task's own cancellation from a stray ``CancelledError``.

A task asked to cancel (``Task.cancel``, a timeout, shutdown) must let the ``CancelledError`` go.
But one also escapes libraries that await their own cancelled internal tasks: aiokafka's consumer
awaits its coordinator's tasks when it stops (aio-libs/aiokafka#647, #983). A long-running loop
that re-raised every ``CancelledError`` as "cancelled" ended for good on such a stray one: the
notifier's sellers consumer stopped after a broker restart, readiness said ``stopped:
consumer-1``, and nothing consumed that group again (CI). Loops re-raise a ``CancelledError`` only
when their task was asked to cancel (``Task.cancelling()``), and treat any other as a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator


def cancel_requested() -> bool:
    """True when the current task has been asked to cancel and has not uncancelled since."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def is_failure(exc: BaseException) -> bool:
    """An ``Exception``, or a ``CancelledError`` the current task was not asked for: a failure to
    log and recover from, not a reason to stop."""
    if isinstance(exc, Exception):
        return True
    return isinstance(exc, asyncio.CancelledError) and not cancel_requested()


@contextlib.contextmanager
def suppressed_failures() -> Iterator[None]:
    """``contextlib.suppress(Exception)`` that also swallows a stray ``CancelledError``; the task's
    own cancellation goes through."""
    try:
        yield
    except BaseException as exc:
        if not is_failure(exc):
            raise
