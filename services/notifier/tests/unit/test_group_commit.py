"""The flow the SMS sender runs on (notifier.group_commit): N jobs in flight, the next claim while
the previous batch is still in flight, outcomes committed in groups."""

from __future__ import annotations

import asyncio
import time

import pytest

from notifier import group_commit
from notifier.group_commit import GroupCommitFlow


class Recorder:
    def __init__(self, fail_first: int = 0) -> None:
        self.batches: list[list[int]] = []
        self.fail_first = fail_first

    async def __call__(self, outcomes: list[int]) -> None:
        if self.fail_first:
            self.fail_first -= 1
            raise ConnectionRefusedError("database down")
        self.batches.append(list(outcomes))


async def test_jobs_run_n_at_a_time_and_their_outcomes_are_committed_in_groups() -> None:
    in_flight, most = 0, 0

    async def work(job: int) -> int:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return job

    record = Recorder()

    async def claim(flow: GroupCommitFlow[int, int]) -> None:
        flow.feed(list(range(40)))

    await GroupCommitFlow(workers=4, work=work, record=record).run(claim)
    assert most == 4
    assert sorted(o for b in record.batches for o in b) == list(range(40))
    assert len(record.batches) < 10, "outcomes that finished meanwhile share a commit"


async def test_the_next_batch_is_claimed_while_the_previous_one_is_in_flight() -> None:
    finished: list[int] = []
    fed_second_while_unfinished: list[int] = []

    async def work(job: int) -> int:
        await asyncio.sleep(0.02)
        finished.append(job)
        return job

    async def claim(flow: GroupCommitFlow[int, int]) -> None:
        flow.feed(list(range(10)))
        await flow.below(5)
        fed_second_while_unfinished.extend(j for j in range(10) if j not in finished)
        flow.feed(list(range(10, 20)))

    record = Recorder()
    await GroupCommitFlow(workers=2, work=work, record=record).run(claim)
    assert len(fed_second_while_unfinished) >= 3, "claimed again with about half the batch left"
    assert sorted(o for b in record.batches for o in b) == list(range(20))


async def test_a_last_outcome_is_committed_without_lingering() -> None:
    async def work(job: int) -> int:
        return job

    async def claim(flow: GroupCommitFlow[int, int]) -> None:
        flow.feed([1])

    record = Recorder()
    started = time.monotonic()
    await GroupCommitFlow(workers=2, work=work, record=record).run(claim)
    assert record.batches == [[1]]
    assert time.monotonic() - started < group_commit.RECORD_LINGER_S / 2


async def test_a_database_outage_while_committing_is_waited_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def work(job: int) -> int:
        return job

    async def claim(flow: GroupCommitFlow[int, int]) -> None:
        flow.feed([1, 2])

    monkeypatch.setattr(group_commit, "RECORD_BACKOFF_INITIAL_S", 0.001)
    record = Recorder(fail_first=7)  # more than the attempts other errors get
    await GroupCommitFlow(workers=2, work=work, record=record).run(claim)
    assert sorted(o for b in record.batches for o in b) == [1, 2]


async def test_a_failing_worker_stops_the_flow_with_its_error() -> None:
    async def work(job: int) -> int:
        if job == 3:
            raise ValueError("provider adapter bug")
        await asyncio.sleep(0.01)
        return job

    async def claim(flow: GroupCommitFlow[int, int]) -> None:
        flow.feed(list(range(10)))
        await asyncio.Event().wait()  # a claimer that would go on for ever

    with pytest.raises(ValueError, match="provider adapter bug"):
        async with asyncio.timeout(5):
            await GroupCommitFlow(workers=2, work=work, record=Recorder()).run(claim)


async def test_a_job_the_preparer_settles_is_recorded_without_work() -> None:
    worked: list[int] = []

    async def prepare(job: int) -> int | None:
        return -job if job % 2 else None  # odd jobs need no work: their outcome is known

    async def work(job: int) -> int:
        worked.append(job)
        return job

    async def claim(flow: GroupCommitFlow[int, int]) -> None:
        flow.feed(list(range(10)))

    record = Recorder()
    await GroupCommitFlow(workers=2, work=work, record=record, prepare=prepare).run(claim)
    assert sorted(worked) == [0, 2, 4, 6, 8]
    assert sorted(o for b in record.batches for o in b) == [-9, -7, -5, -3, -1, 0, 2, 4, 6, 8]


async def test_the_preparer_stays_a_few_jobs_per_worker_ahead() -> None:
    """Preparing is CPU and a prepared job waits for a worker: it runs just ahead of them (so a
    job does not wait out its lease prepared), not through the whole claim at once."""
    prepared = 0
    ahead: list[int] = []
    started = 0

    async def prepare(job: int) -> int | None:
        nonlocal prepared
        prepared += 1
        ahead.append(prepared - started)
        return None

    async def work(job: int) -> int:
        nonlocal started
        started += 1
        await asyncio.sleep(0.005)
        return job

    async def claim(flow: GroupCommitFlow[int, int]) -> None:
        flow.feed(list(range(40)))

    record = Recorder()
    await GroupCommitFlow(workers=2, work=work, record=record, prepare=prepare).run(claim)
    assert sorted(o for b in record.batches for o in b) == list(range(40))
    assert max(ahead) <= 2 * 2 + 2 + 1, ahead  # the ready queue, the workers' jobs, the one in hand


async def test_outcomes_the_preparer_settles_are_committed_without_lingering() -> None:
    """Notices held for want of an address need no work: with nothing at work, each group of them
    is committed as it settles, not after the linger (the SMS they fall back to waits on it)."""
    committed_at: list[float] = []
    started = time.monotonic()

    async def prepare(job: int) -> int | None:
        await asyncio.sleep(0.01)  # the claim still being settled, job by job
        return job

    async def work(job: int) -> int:
        raise AssertionError("no work for a settled job")

    async def record(outcomes: list[int]) -> None:
        committed_at.append(time.monotonic() - started)

    async def claim(flow: GroupCommitFlow[int, int]) -> None:
        flow.feed(list(range(30)))

    flow = GroupCommitFlow(workers=2, work=work, record=record, prepare=prepare, linger_s=1.0)
    await flow.run(claim)
    assert committed_at[0] < 0.15, "the first settled outcomes committed at once, not lingered on"
    assert len(committed_at) > 1, "later ones in groups as they settle"
