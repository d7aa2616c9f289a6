"""recall_shared.event_ids: the same parts always give the same id, in the shapes already in use."""

from __future__ import annotations

import uuid

import pytest

from recall_shared.event_ids import event_id, hashed_event_id


def test_parts_joined_by_colons() -> None:
    assert event_id("api-key", "k-1", "issued") == "api-key:k-1:issued"
    assert event_id("r-1", 3, "recall.published.v1") == "r-1:3:recall.published.v1"
    assert event_id("not-affected", "a-1") == event_id("not-affected", "a-1")


def test_no_parts_or_too_long_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one part"):
        event_id()
    with pytest.raises(ValueError, match="65 characters, over 64; use hashed_event_id"):
        event_id("x" * 60, "abcd")


def test_hashed_is_kind_and_uuid5() -> None:
    ns = uuid.UUID("3d1e4b8a-7c2f-4a9e-b6d0-8f5e2c1a9b34")
    assert hashed_event_id("case", ns, "c-1:open:None") == f"case:{uuid.uuid5(ns, 'c-1:open:None')}"
