"""The checkout guard's index, free of I/O: what a refresh's rows make of it, what it finds for a
basket, and when it is too old to answer from."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from purchase_matcher.guard_index import GuardIndex, IndexState, next_state
from purchase_matcher.sellability import SaleLine
from recall_shared import events as ev
from recall_shared.sample_events import recall_snapshot

GTIN = "00012345678905"


def recall(recall_id: str, *rules: ev.ScopeRule) -> ev.RecallSnapshot:
    return recall_snapshot(
        *rules, recall_id=recall_id, version=2, published_at=datetime(2026, 3, 1, tzinfo=UTC)
    )


def sale(**kw: Any) -> SaleLine:
    return replace(SaleLine(product_id="p-none", seller_id="s-1"), **kw)


def row(snap: ev.RecallSnapshot) -> tuple[str, int, str]:
    return (snap.recall_id, snap.version, snap.model_dump_json())


def test_recalls_are_found_by_product_gtin_and_model_key() -> None:
    kettle = recall("rc-1", ev.ScopeRule(product_ids=["p-kettle"]))
    lamp = recall("rc-2", ev.ScopeRule(gtins=[GTIN]), ev.ScopeRule(model_numbers=["KX 1"]))
    state = next_state(IndexState(), [row(lamp), row(kettle)], ["h-op"], as_of=1.0)
    assert state.recalls_naming([sale(product_id="p-kettle")]) == [kettle]
    assert state.recalls_naming([sale(gtin=GTIN)]) == [lamp]
    assert state.recalls_naming([sale(model_number="kx-1")]) == [lamp]  # as domain.model_key
    both = state.recalls_naming([sale(model_number="KX1"), sale(product_id="p-kettle")])
    assert [r.recall_id for r in both] == ["rc-1", "rc-2"]  # each once, in id order
    assert state.recalls_naming([sale(product_id="p-lamp", gtin="00000000000017")]) == []
    assert state.operator_keys == frozenset({"h-op"})
    assert state.as_of == 1.0


def test_a_held_version_is_kept_a_new_one_replaces_it_and_a_missing_recall_leaves() -> None:
    v1 = recall("rc-1", ev.ScopeRule(product_ids=["p-old"]))
    other = recall("rc-2", ev.ScopeRule(product_ids=["p-kettle"]))
    first = next_state(IndexState(), [row(v1), row(other)], [], as_of=1.0)
    # rc-2 unchanged (no snapshot sent: the index's own object is kept)
    kept = next_state(first, [row(v1), ("rc-2", other.version, None)], [], as_of=2.0)
    assert kept.recalls["rc-2"] is first.recalls["rc-2"]
    # nothing changed: the same index, not rebuilt; the keys and the time are the new ones
    same = next_state(
        kept, [("rc-1", v1.version, None), ("rc-2", other.version, None)], ["h"], as_of=2.5
    )
    assert same.naming is kept.naming
    assert (same.operator_keys, same.as_of) == (frozenset({"h"}), 2.5)
    # an amendment names another product: the old identifier no longer finds it
    v3 = v1.model_copy(update={"version": 3, "rules": [ev.ScopeRule(product_ids=["p-new"])]})
    amended = next_state(kept, [row(v3), ("rc-2", other.version, None)], [], as_of=3.0)
    assert amended.recalls_naming([sale(product_id="p-old")]) == []
    assert amended.recalls_naming([sale(product_id="p-new")]) == [v3]
    # closed: not among the active rows any more
    closed = next_state(amended, [row(v3)], [], as_of=4.0)
    assert closed.recalls_naming([sale(product_id="p-kettle")]) == []
    assert set(closed.recalls) == {"rc-1"}


def test_a_row_without_snapshot_for_a_version_not_held_is_left_out() -> None:
    """Cannot come from ACTIVE_RECALLS with the index's own ids and versions; if it did, the index
    must not pair the new version with an old scope."""
    v1 = recall("rc-1", ev.ScopeRule(product_ids=["p-kettle"]))
    state = next_state(IndexState(), [row(v1)], [], as_of=1.0)
    assert next_state(state, [("rc-1", v1.version + 1, None)], [], as_of=2.0).recalls == {}


class NoPool:
    async def fetch(self, query: str, *args: Any) -> list[Any]:
        raise AssertionError("not read here")


def test_the_index_answers_only_while_its_last_refresh_is_recent() -> None:
    now = [100.0]
    index = GuardIndex(NoPool(), refresh_s=0.5, max_age_s=2.0, clock=lambda: now[0])
    assert index.fresh_state() is None  # never refreshed
    index.state = next_state(IndexState(), [], ["h"], as_of=100.0)
    now[0] = 102.0
    assert index.fresh_state() is index.state
    now[0] = 102.01
    assert index.fresh_state() is None  # too old: the guard reads the tables
