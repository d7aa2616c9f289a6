"""purchase-matcher's own metrics."""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter
from sqlalchemy.ext.asyncio import AsyncSession

from recall_shared.metrics import count_on_commit

# A reconcile pass's counts (purchase_matcher.handlers._Pass.counts) as the metric names them.
CHANGES = {"raise": "raised", "update": "updated", "withdraw": "withdrawn"}


class MatcherMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.alert_changes = Counter(
            "alerts_changed_total",
            "Alerts raised, updated or withdrawn by reconcile passes, counted when the pass "
            "commits.",
            ["change"],
            registry=registry,
        )
        for change in CHANGES.values():
            self.alert_changes.labels(change)  # every series from the first scrape, at 0

    def count_pass(self, session: AsyncSession, counts: Mapping[str, int]) -> None:
        for key, change in CHANGES.items():
            count_on_commit(session, self.alert_changes, counts.get(key, 0), change)
