"""Where every asyncio task of a service waits, on ``kill -USR1 <pid>``: one log line per task.

A hung await leaves no trace in a thread dump (py-spy shows the event loop idle); the task's own
stack says which statement, lock or queue it waits on. Operations: docs/operations.md ("A service
that stopped working without an error")."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import signal

log = logging.getLogger(__name__)


def log_tasks() -> None:
    for task in asyncio.all_tasks():
        out = io.StringIO()
        task.print_stack(limit=30, file=out)
        log.warning("task stack", extra={"task": task.get_name(), "stack": out.getvalue()})


def install() -> None:
    """Log the tasks on SIGUSR1 (the running loop's handler; nothing where signals are not ours)."""
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, log_tasks)
