"""Settling a batch without a database: bisection isolates poison, infrastructure failures wait."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

import pytest

from recall_shared.batch import Settler, WaitItOut, backoff_delay
from recall_shared.handlers import PermanentError


class Ledger:
    """Stands for one transaction per call: a failing call applies nothing."""

    def __init__(self, poison: dict[int, BaseException] | None = None) -> None:
        self.poison = poison or {}
        self.applied: list[int] = []
        self.calls: list[list[int]] = []
        self.letters: list[tuple[int, str, int]] = []
        self.healthy = True
        self.fail_next: list[BaseException] = []

    async def apply(self, chunk: Sequence[int]) -> None:
        self.calls.append(list(chunk))
        if self.fail_next:
            raise self.fail_next.pop(0)
        for item in chunk:
            if item in self.poison:
                raise self.poison[item]
        self.applied.extend(chunk)

    async def dead_letter(self, item: int, reason: str, exc: BaseException, attempts: int) -> None:
        self.letters.append((item, reason, attempts))

    async def is_healthy(self) -> bool:
        return self.healthy


def settler(ledger: Ledger, max_attempts: int = 3) -> Settler[int]:
    return Settler(
        apply=ledger.apply,
        dead_letter=ledger.dead_letter,
        healthy=ledger.is_healthy,
        max_attempts=max_attempts,
        backoff_initial_s=0.001,
        backoff_max_s=0.002,
    )


async def test_a_clean_batch_is_one_transaction() -> None:
    ledger = Ledger()
    await settler(ledger).settle(deque(range(100)))
    assert ledger.calls == [list(range(100))]
    assert ledger.applied == list(range(100))


@pytest.mark.parametrize("poison_at", [0, 1, 37, 63, 99])
async def test_one_poison_record_is_isolated_and_the_rest_applied_once_in_order(
    poison_at: int,
) -> None:
    ledger = Ledger({poison_at: PermanentError("never")})
    await settler(ledger).settle(deque(range(100)))
    assert ledger.applied == [i for i in range(100) if i != poison_at]  # once each, in order
    assert ledger.letters == [(poison_at, "rejected", 1)]
    assert len(ledger.calls) <= 2 * 7 + 3  # about two transactions per halving, not one per record


async def test_an_unexpected_error_is_retried_alone_then_dead_lettered_as_failed() -> None:
    ledger = Ledger({5: RuntimeError("a bug")})
    await settler(ledger, max_attempts=3).settle(deque(range(10)))
    assert ledger.letters == [(5, "failed", 3)]
    assert [c for c in ledger.calls if c == [5]] == [[5], [5], [5]]
    assert ledger.applied == [0, 1, 2, 3, 4, 6, 7, 8, 9]


async def test_two_poison_records() -> None:
    ledger = Ledger({2: PermanentError("a"), 7: ValueError("b")})
    await settler(ledger, max_attempts=2).settle(deque(range(10)))
    assert ledger.letters == [(2, "rejected", 1), (7, "failed", 2)]
    assert ledger.applied == [0, 1, 3, 4, 5, 6, 8, 9]


async def test_an_infrastructure_failure_waits_with_the_rest_still_pending() -> None:
    ledger = Ledger({3: PermanentError("poison")})
    pending = deque(range(8))
    s = settler(ledger)
    # The poison is isolated, then the database goes away while the rest is applied.
    ledger.fail_next = []
    calls = 0
    original = ledger.apply

    async def apply_then_outage(chunk: Sequence[int]) -> None:
        nonlocal calls
        calls += 1
        if 3 not in chunk and chunk[0] > 3:
            raise ConnectionResetError(104, "server went away")
        await original(chunk)

    s.apply = apply_then_outage
    with pytest.raises(WaitItOut) as waited:
        await s.settle(pending)
    assert isinstance(waited.value.cause, ConnectionResetError)
    assert ledger.letters == [(3, "rejected", 1)]
    assert ledger.applied == [0, 1, 2]
    assert list(pending) == [4, 5, 6, 7]  # exactly what is left, to settle once it is back
    s.apply = original
    await s.settle(pending)
    assert ledger.applied == [0, 1, 2, 4, 5, 6, 7] and not pending
    assert ledger.letters == [(3, "rejected", 1)]  # not dead-lettered twice


async def test_an_unexpected_error_while_the_database_is_down_waits_instead_of_counting() -> None:
    ledger = Ledger({0: RuntimeError("odd error while the server restarts")})
    ledger.healthy = False
    with pytest.raises(WaitItOut):
        await settler(ledger).settle(deque([0]))
    assert ledger.letters == []


async def test_transient_failures_are_never_dead_lettered_however_many() -> None:
    ledger = Ledger()
    pending = deque(range(5))
    s = settler(ledger, max_attempts=1)
    for _ in range(50):
        ledger.fail_next = [ConnectionRefusedError(111, "refused")]
        with pytest.raises(WaitItOut):
            await s.settle(pending)
    await s.settle(pending)
    assert ledger.letters == [] and ledger.applied == list(range(5))


def test_backoff_is_capped_and_jittered() -> None:
    delays = [backoff_delay(a, initial=0.2, cap=30.0) for a in range(1, 30) for _ in range(5)]
    assert max(delays) <= 30.0
    assert all(d >= 0.1 for d in delays)
    late = [backoff_delay(20, initial=0.2, cap=30.0) for _ in range(50)]
    assert len(set(late)) > 1 and min(late) >= 15.0  # full jitter within [cap/2, cap]
