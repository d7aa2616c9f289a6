"""Claimed work flowing through concurrent workers, its outcomes group-committed: the pipeline both
senders run on (the email sender over its SMTP connections, the SMS sender over its requests in
flight). ``workers`` jobs are in flight at once; an optional preparer (``prepare``: deciding and
rendering, CPU) works just ahead of them, a few jobs per worker, so no worker waits on it and it
never runs far ahead of a lease; one recorder commits the outcomes of everything that finished
meanwhile in one call of ``record`` (one transaction) while the next jobs go out, and the claimer
tops the queue up whenever fewer than a watermark are left unfinished (``below``), so no worker
waits on a claim or a commit.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from notifier.stages import run_stages
from recall_shared.failures import is_transient
from recall_shared.waits import wait_set

log = logging.getLogger(__name__)

J = TypeVar("J")
R = TypeVar("R")

# The recorder waits up to this long after the first outcome for more to join (fewer, larger
# transactions) while workers are at work, and takes at most this many in one. With no job at work
# it commits at once: no tail of waiting at the end of a burst, and outcomes the preparer settles
# (notices held for want of an address) are committed as they come, a group of what settled while
# the previous commit ran, so the SMS they fall back to is not held back by a linger.
RECORD_LINGER_S = 0.1
RECORD_MAX = 500
_SETTLED_RUN = 100  # outcomes the preparer settles in a row before it lets the other stages run
_RECORD_ATTEMPTS = 5  # for errors that are not the database's (those are waited out)
_RECORD_ATTEMPT_TIMEOUT_S = 30.0
RECORD_BACKOFF_INITIAL_S = 0.2
_RECORD_BACKOFF_MAX_S = 5.0


class GroupCommitFlow(Generic[J, R]):
    def __init__(
        self,
        *,
        workers: int,
        work: Callable[[J], Awaitable[R]],
        record: Callable[[list[R]], Awaitable[None]],
        prepare: Callable[[J], Awaitable[R | None]] | None = None,
        name: str = "flow",  # its stages are named "<name>: send 1" and so on
        linger_s: float | None = None,
        what: str = "outcomes",
    ) -> None:
        """``prepare``, if given, runs on each job in order before a worker takes it: it returns
        an outcome when the job needs no work (recorded as it is), None to pass the job on."""
        self.name = name
        self.workers = workers
        self._live = workers
        self._work = work
        self._record = record
        self._prepare = prepare
        self._linger_s = RECORD_LINGER_S if linger_s is None else linger_s
        self._what = what
        self._todo: asyncio.Queue[J | None] = asyncio.Queue()
        # What the workers take: the preparer's output, a few per worker, or the jobs as fed.
        self._ready: asyncio.Queue[J | None] = (
            asyncio.Queue(maxsize=2 * workers) if prepare is not None else self._todo
        )
        self._done: asyncio.Queue[R | None] = asyncio.Queue()
        self.unfinished = 0  # fed and not yet through ``work`` (or settled by ``prepare``)
        self.at_work = 0  # handed to the workers and not yet through ``work``
        self._changed = asyncio.Event()

    def feed(self, jobs: list[J]) -> None:
        for job in jobs:
            self._todo.put_nowait(job)
        self.unfinished += len(jobs)
        if self._prepare is None:
            self.at_work += len(jobs)

    async def below(self, watermark: int) -> None:
        """Return once no more than ``watermark`` jobs are unfinished."""
        while self.unfinished > watermark:
            self._changed.clear()
            await self._changed.wait()

    async def run(self, claim: Callable[[GroupCommitFlow[J, R]], Awaitable[object]]) -> None:
        """Run the workers and the recorder while ``claim`` feeds them; return once all it fed is
        recorded. If any part fails, the rest is stopped (what was claimed and not recorded awaits
        its lease). The stages are supervised by :func:`notifier.stages.run_stages`."""
        self._live = self.workers

        async def claimer() -> None:
            try:
                await claim(self)
            finally:
                for _ in range(1 if self._prepare is not None else self.workers):
                    self._todo.put_nowait(None)

        stages = [
            (f"{self.name}: record", self._recorder()),
            (f"{self.name}: claim", claimer()),
            *[(f"{self.name}: send {i}", self._worker()) for i in range(self.workers)],
        ]
        if self._prepare is not None:
            stages.append((f"{self.name}: prepare", self._preparer(self._prepare)))
        await run_stages(stages)

    def _through(self, outcome: R) -> None:
        self.unfinished -= 1
        self._changed.set()
        self._done.put_nowait(outcome)

    async def _preparer(self, prepare: Callable[[J], Awaitable[R | None]]) -> None:
        settled = 0
        while (job := await self._todo.get()) is not None:
            outcome = await prepare(job)
            if outcome is not None:
                self._through(outcome)
                settled += 1
                if settled % _SETTLED_RUN:
                    continue  # settling is quick: a claim's run of them goes to one commit
            else:
                self.at_work += 1
                await self._ready.put(job)
            await asyncio.sleep(0)  # preparing is CPU: let the workers read their replies
        for _ in range(self.workers):
            await self._ready.put(None)

    async def _worker(self) -> None:
        while (job := await self._ready.get()) is not None:
            outcome = await self._work(job)
            self.at_work -= 1
            self._through(outcome)
        self._live -= 1
        if self._live == 0:
            self._done.put_nowait(None)  # the last worker done: the recorder ends after the rest

    async def _recorder(self) -> None:
        ended = False
        while not ended:
            first = await self._done.get()
            if first is None:
                return
            batch = [first]
            await self._linger()
            while len(batch) < RECORD_MAX:
                try:
                    item = self._done.get_nowait()
                except asyncio.QueueEmpty:
                    break
                if item is None:
                    ended = True
                    break
                batch.append(item)
            await self._record_retrying(batch)

    async def _linger(self) -> None:
        """Wait for more outcomes: until the linger is over, the batch is full, or no job is left at
        work."""
        deadline = asyncio.get_running_loop().time() + self._linger_s
        while self.at_work > 0 and self._done.qsize() < RECORD_MAX:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                return
            self._changed.clear()
            await wait_set(self._changed, left)

    async def _record_retrying(self, outcomes: list[R]) -> None:
        await record_retrying(self._record, outcomes, what=self._what)


async def record_retrying(
    record: Callable[[list[R]], Awaitable[None]], outcomes: list[R], *, what: str = "outcomes"
) -> None:
    """Record, waiting out a database outage for as long as it lasts: the work is done, so giving
    up would do it again (a mail or an SMS sent twice). An attempt that hangs (seen once while
    PostgreSQL was shutting down: no error, no answer) is cut off and tried again; other errors
    are given up after a few attempts."""
    delay = RECORD_BACKOFF_INITIAL_S
    for attempt in itertools.count(1):
        try:
            async with asyncio.timeout(_RECORD_ATTEMPT_TIMEOUT_S):
                await record(outcomes)
            return
        except Exception as exc:
            if attempt >= _RECORD_ATTEMPTS and not (
                is_transient(exc) or isinstance(exc, TimeoutError)
            ):
                raise
            log.warning(
                f"recording {what} failed; retrying",
                exc_info=True,
                extra={"attempt": attempt, "retry_in_s": delay, "outcomes": len(outcomes)},
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, _RECORD_BACKOFF_MAX_S)
