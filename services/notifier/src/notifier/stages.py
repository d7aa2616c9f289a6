"""Run a sender's stages (claimer, workers, recorder) as tasks of their own, supervised by hand.

Not a ``TaskGroup``: a group stops its body by cancelling it, and a cancellation swallowed anywhere
in the body's await chain (a database driver, a pool) left the email sender's claimer waiting for
workers that were gone, sending nothing again and logging nothing (CI, after a database outage).
Here each stage is a task; once one fails the others are cancelled, and one that does not end
within ``stop_timeout_s`` is left behind and logged with its stack, so the sender can start afresh.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Coroutine, Sequence
from typing import Any

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 10.0


async def run_stages(
    stages: Sequence[tuple[str, Coroutine[Any, Any, None]]], *, stop_timeout_s: float | None = None
) -> None:
    """Run the named coroutines until all have returned; if one raises, stop the rest and raise
    its error. Cancelled from outside, stop them all and propagate the cancellation."""
    tasks = [asyncio.create_task(coro, name=name) for name, coro in stages]
    timeout = STOP_TIMEOUT_S if stop_timeout_s is None else stop_timeout_s
    try:
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    except asyncio.CancelledError:
        await _stop(tasks, timeout)
        raise
    if pending:
        await _stop(pending, timeout)
    for task in tasks:
        if task in done and not task.cancelled() and (failure := task.exception()):
            raise failure


async def _stop(
    tasks: Sequence[asyncio.Task[None]] | set[asyncio.Task[None]], timeout: float
) -> None:
    """Cancel the tasks and wait a while for them to end; one that does not is logged and left."""
    for task in tasks:
        task.cancel()
    _, stuck = await asyncio.wait(tasks, timeout=timeout)
    for task in stuck:
        out = io.StringIO()
        task.print_stack(file=out)
        log.error(
            "a sender stage did not stop when cancelled; left behind",
            extra={"task": task.get_name(), "stack": out.getvalue()},
        )
