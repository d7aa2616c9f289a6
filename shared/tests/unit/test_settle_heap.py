"""Before serving, the heap is frozen and the collector runs at the service thresholds."""

import gc

from recall_shared.cli import GC_THRESHOLDS, settle_heap


def test_settle_heap_freezes_what_exists_and_sets_the_thresholds() -> None:
    before = gc.get_threshold()
    try:
        settle_heap()
        assert gc.get_threshold() == GC_THRESHOLDS
        assert gc.get_freeze_count() > 0
        assert GC_THRESHOLDS[0] > before[0]  # a larger young generation than Python's default
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
