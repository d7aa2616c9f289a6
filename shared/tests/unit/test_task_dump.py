"""SIGUSR1 logs where each asyncio task of the service waits."""

from __future__ import annotations

import asyncio
import logging
import os
import signal

import pytest

from recall_shared import task_dump


async def test_sigusr1_logs_the_stack_each_task_waits_at(caplog: pytest.LogCaptureFixture) -> None:
    gate = asyncio.Event()

    async def waits_for_the_gate() -> None:
        await gate.wait()

    waiter = asyncio.create_task(waits_for_the_gate(), name="the-waiter")
    await asyncio.sleep(0)
    task_dump.install()
    try:
        with caplog.at_level(logging.WARNING, logger=task_dump.__name__):
            os.kill(os.getpid(), signal.SIGUSR1)
            await asyncio.sleep(0.05)  # the loop runs the handler
        lines = {
            r.__dict__["task"]: r.__dict__["stack"]
            for r in caplog.records
            if r.getMessage() == "task stack"
        }
        assert "the-waiter" in lines
        assert "waits_for_the_gate" in lines["the-waiter"]
        assert "await gate.wait()" in lines["the-waiter"]
    finally:
        asyncio.get_running_loop().remove_signal_handler(signal.SIGUSR1)
        gate.set()
        await waiter
