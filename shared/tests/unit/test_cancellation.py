"""The task's own cancellation goes through; a stray ``CancelledError`` (one the task was not
asked for, as aiokafka lets escape) is a failure like any other."""

from __future__ import annotations

import asyncio

import pytest

from recall_shared.cancellation import cancel_requested, is_failure, suppressed_failures


async def test_a_stray_cancelled_error_is_a_failure_and_is_suppressed() -> None:
    assert not cancel_requested()
    assert is_failure(asyncio.CancelledError())
    with suppressed_failures():
        raise asyncio.CancelledError()
    with suppressed_failures():
        raise RuntimeError("suppressed like contextlib.suppress(Exception)")


async def test_the_tasks_own_cancellation_is_not_a_failure_and_goes_through() -> None:
    seen: list[bool] = []
    entered = asyncio.Event()

    async def work() -> None:
        try:
            entered.set()
            await asyncio.sleep(30)
        except asyncio.CancelledError as exc:
            seen.append(is_failure(exc))
            with suppressed_failures():
                raise
            seen.append(True)  # not reached: the cancellation went through

    task = asyncio.create_task(work())
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen == [False]


async def test_a_timeouts_cancellation_is_not_a_failure() -> None:
    seen: list[bool] = []
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError as exc:
                seen.append(is_failure(exc))
                raise
    assert seen == [False]


def test_other_base_exceptions_are_not_failures() -> None:
    assert not is_failure(KeyboardInterrupt())
    assert is_failure(ValueError("x"))
