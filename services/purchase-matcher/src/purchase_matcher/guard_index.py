"""The checkout guard's in-process index: the active recalls (validated snapshots, found by the
identifiers their rules name) and the hashes of the operator keys, read from purchase-matcher's own
tables every ``guard_index_refresh_s`` so that a check needs no database round trip.

Staleness bound: an answer from the index reflects the tables as they were at most
``guard_index_max_age_s`` before it (the start of the last refresh that succeeded); once older
(the database unreachable, a refresh slow), and before the first refresh, the guard reads the
tables per request instead (``SellabilityGuard``), so it never answers from older facts. The tables
themselves are written by the consumers (recalls.v1, sellers.v1) as before: a published recall
blocks, a closed one stops blocking and a revoked key is refused at most one refresh interval after
purchase-matcher has applied the event (under ``guard_index_max_age_s`` whatever happens).

A refresh is one statement for the recalls (each active recall's version, and the snapshot only of
those the index does not hold at that version: versions never change) and one for the keys, so its
cost is small and flat; the identifiers come from ``domain.recall_identifiers``, the function that
writes ``recall_identifiers`` for the order path, and a line is judged by ``sellability.judge``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from purchase_matcher.domain import recall_identifiers
from purchase_matcher.sellability import SaleLine, sale_identifiers
from recall_shared import events as ev
from recall_shared.api_keys import Fetcher
from recall_shared.waits import wait_set

log = logging.getLogger(__name__)

# Every active recall and its version ($1/$2: the ids and versions the index holds); the snapshot
# only where the index has another version or none. One statement: one consistent view.
ACTIVE_RECALLS = (
    "SELECT r.recall_id, r.version, "
    "CASE WHEN k.version IS DISTINCT FROM r.version THEN r.snapshot::text END "
    "FROM recalls r LEFT JOIN unnest($1::text[], $2::int[]) AS k(recall_id, version) "
    "ON k.recall_id = r.recall_id WHERE r.status = 'active'"
)
OPERATOR_KEYS = "SELECT key_hash FROM seller_keys WHERE role = 'operator' AND revoked_at IS NULL"


@dataclass(frozen=True)
class IndexState:
    """What one refresh read; replaced whole, never changed (a check reads one state)."""

    recalls: Mapping[str, ev.RecallSnapshot] = field(default_factory=dict)
    # (kind, value) -> the ids of the recalls naming it (kinds as domain.recall_identifiers)
    naming: Mapping[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)
    operator_keys: frozenset[str] = frozenset()
    as_of: float = float("-inf")  # monotonic time the refresh's reads began

    def recalls_naming(self, lines: Iterable[SaleLine]) -> list[ev.RecallSnapshot]:
        """The active recalls naming any of the lines' identifiers, as ``guard.RECALLS_NAMING``
        finds them in the tables."""
        found: set[str] = set()
        for kind, values in sale_identifiers(lines).items():
            for value in values:
                found.update(self.naming.get((kind, value), ()))
        return [self.recalls[r] for r in sorted(found)]


def next_state(
    previous: IndexState,
    rows: Sequence[Sequence[Any]],
    operator_keys: Iterable[str],
    as_of: float,
) -> IndexState:
    """The state after a refresh: ``rows`` as ACTIVE_RECALLS returns them (recall id, version,
    snapshot JSON or None where ``previous`` holds that version). A recall not in ``rows`` is
    closed (or gone) and leaves the index."""
    recalls: dict[str, ev.RecallSnapshot] = {}
    for recall_id, version, snapshot in rows:
        held = previous.recalls.get(recall_id)
        if snapshot is None and held is not None and held.version == version:
            recalls[recall_id] = held
        elif snapshot is not None:
            recalls[recall_id] = ev.RecallSnapshot.model_validate_json(snapshot)
    if recalls.keys() == previous.recalls.keys() and all(
        recalls[r] is previous.recalls[r] for r in recalls
    ):
        # nothing changed (the usual refresh): the previous index, without recomputing it
        return IndexState(previous.recalls, previous.naming, frozenset(operator_keys), as_of)
    naming: dict[tuple[str, str], list[str]] = {}
    for recall_id, snap in recalls.items():
        for kind, values in recall_identifiers(snap).items():
            for value in values:
                naming.setdefault((kind, value), []).append(recall_id)
    return IndexState(
        recalls=recalls,
        naming={k: tuple(v) for k, v in naming.items()},
        operator_keys=frozenset(operator_keys),
        as_of=as_of,
    )


class GuardIndex:
    """The index and the task that keeps it current (a runtime background task: ``run``/``stop``).

    ``fresh_state()``: the last refresh's state while it is recent enough to answer from
    (``max_age_s``), else None."""

    def __init__(
        self,
        pool: Fetcher,
        *,
        refresh_s: float,
        max_age_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.pool = pool
        self.refresh_s, self.max_age_s = refresh_s, max_age_s
        self.clock = clock
        self.state = IndexState()
        self._wake = asyncio.Event()
        self._refreshed = asyncio.Condition()
        self._stopping = False
        self._failing = False

    def fresh_state(self) -> IndexState | None:
        state = self.state
        return state if self.clock() - state.as_of <= self.max_age_s else None

    async def refresh(self) -> None:
        began = self.clock()
        held = self.state.recalls
        rows = await self.pool.fetch(
            ACTIVE_RECALLS, list(held), [snap.version for snap in held.values()]
        )
        keys = await self.pool.fetch(OPERATOR_KEYS)
        self.state = next_state(self.state, rows, (k[0] for k in keys), began)

    async def caught_up(self, timeout_s: float = 10.0) -> None:
        """Returns once a refresh that began after the call has succeeded (the next one is started
        at once): what the tables held when called, the index now holds too."""
        asked = self.clock()
        self._wake.set()
        async with asyncio.timeout(timeout_s), self._refreshed:
            await self._refreshed.wait_for(lambda: self.state.as_of >= asked)

    async def run(self, runtime: object) -> None:
        """Background task: refresh every ``refresh_s`` until stopped."""
        while not self._stopping:
            try:
                await self.refresh()
            except Exception as exc:
                if not self._failing:  # once per outage, not every interval
                    log.warning(
                        "checkout guard index not refreshed; answering from the tables",
                        extra={"error": f"{type(exc).__name__}: {exc}"[:300]},
                    )
                self._failing = True
            else:
                if self._failing:
                    log.info("checkout guard index refreshed again")
                self._failing = False
                async with self._refreshed:
                    self._refreshed.notify_all()
            await wait_set(self._wake, self.refresh_s)
            self._wake.clear()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
