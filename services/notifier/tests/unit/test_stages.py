"""notifier.stages: a failing stage stops the others and its error is raised; a stage that ignores
its cancellation is left behind (logged), not waited for."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import pytest

from notifier.stages import run_stages


async def test_all_stages_return_then_it_returns() -> None:
    done: list[str] = []

    async def stage(name: str, delay: float) -> None:
        await asyncio.sleep(delay)
        done.append(name)

    await run_stages([("a", stage("a", 0.02)), ("b", stage("b", 0.01))])
    assert done == ["b", "a"]


async def test_a_failing_stage_stops_the_others_and_its_error_is_raised() -> None:
    stopped = asyncio.Event()

    async def waits() -> None:
        try:
            await asyncio.sleep(60)
        finally:
            stopped.set()

    async def fails() -> None:
        await asyncio.sleep(0.01)
        raise RuntimeError("broken")

    with pytest.raises(RuntimeError, match="broken"):
        await run_stages([("waits", waits()), ("fails", fails())])
    assert stopped.is_set()


async def test_a_stage_ignoring_its_cancellation_is_left_behind_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    let_go = asyncio.Event()

    async def stubborn() -> None:
        while not let_go.is_set():
            with contextlib.suppress(asyncio.CancelledError):
                await let_go.wait()

    async def fails() -> None:
        raise ValueError("bad")

    caplog.set_level(logging.ERROR, logger="notifier.stages")
    with pytest.raises(ValueError):
        await asyncio.wait_for(
            run_stages([("stubborn", stubborn()), ("fails", fails())], stop_timeout_s=0.1), 5
        )
    left = [r for r in caplog.records if "did not stop" in r.getMessage()]
    assert [getattr(r, "task", None) for r in left] == ["stubborn"]
    assert "stubborn" in getattr(left[0], "stack", "")
    let_go.set()
    await asyncio.sleep(0)


async def test_cancelled_from_outside_it_stops_every_stage() -> None:
    stopped: list[str] = []

    async def waits(name: str) -> None:
        try:
            await asyncio.sleep(60)
        finally:
            stopped.append(name)

    running = asyncio.create_task(run_stages([("a", waits("a")), ("b", waits("b"))]))
    await asyncio.sleep(0.01)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert sorted(stopped) == ["a", "b"]
