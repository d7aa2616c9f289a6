"""Settling a batch: apply it in one transaction; when that fails, find out whose fault it is.

- The infrastructure's (database or broker down, serialization failure...): :class:`WaitItOut` is
  raised with the unsettled items still in ``pending``; the caller waits and calls again, for as
  long as it takes.
- A record's: the batch is bisected (first half, then the rest, in partition order) until the poison
  record stands alone; only it is dead-lettered, everything else is applied once. Alone, a
  :class:`~recall_shared.handlers.PermanentError` dead-letters it at once (``rejected``); any other
  error is retried ``max_attempts`` times with backoff, then dead-lettered (``failed``).

Items leave ``pending`` from the front once settled (applied or dead-lettered), so a caller that is
told to wait resumes exactly where this stopped. Pure control flow: the transaction, the dead-letter
write and the health probe are injected, so the algorithm is unit-tested without a database.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from itertools import islice
from typing import Generic, TypeVar

from recall_shared.failures import is_transient
from recall_shared.handlers import PermanentError

T = TypeVar("T")


class WaitItOut(Exception):
    """The infrastructure failed, not the record: wait, then settle the rest."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


def backoff_delay(attempt: int, *, initial: float, cap: float) -> float:
    """Capped exponential backoff with full jitter (attempt 1, 2, ...)."""
    ceiling = min(cap, initial * 2 ** (attempt - 1))
    return random.uniform(ceiling / 2, ceiling)


class Settler(Generic[T]):
    def __init__(
        self,
        *,
        apply: Callable[[Sequence[T]], Awaitable[None]],
        dead_letter: Callable[[T, str, BaseException, int], Awaitable[None]],
        healthy: Callable[[], Awaitable[bool]],
        max_attempts: int,
        backoff_initial_s: float,
        backoff_max_s: float,
        on_failure: Callable[[Sequence[T], BaseException], None] = lambda chunk, exc: None,
    ) -> None:
        self.apply = apply
        self.dead_letter = dead_letter
        self.healthy = healthy
        self.max_attempts = max_attempts
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.on_failure = on_failure

    async def settle(self, pending: deque[T]) -> None:
        """Apply or dead-letter every item of ``pending``, in order (see the module's docstring)."""
        full = size = max(len(pending), 1)
        attempt = 0  # attempts of the single item at the front, once it stands alone
        while pending:
            chunk = list(islice(pending, size))
            try:
                await self.apply(chunk)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.on_failure(chunk, exc)
                if is_transient(exc):
                    raise WaitItOut(exc) from exc
                if len(chunk) > 1:
                    size = (len(chunk) + 1) // 2  # bisect: the first half, then the rest
                    continue
                if isinstance(exc, PermanentError):
                    await self.dead_letter(chunk[0], "rejected", exc, 1)
                else:
                    # An unexpected error with the database down is the database's: wait, don't
                    # count.
                    if not await self.healthy():
                        raise WaitItOut(exc) from exc
                    attempt += 1
                    if attempt < self.max_attempts:
                        await asyncio.sleep(
                            backoff_delay(
                                attempt, initial=self.backoff_initial_s, cap=self.backoff_max_s
                            )
                        )
                        continue
                    await self.dead_letter(chunk[0], "failed", exc, attempt)
                pending.popleft()
                attempt, size = 0, full
                continue
            for _ in chunk:
                pending.popleft()
            attempt = 0
