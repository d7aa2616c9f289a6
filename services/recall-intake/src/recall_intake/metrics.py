"""recall-intake's own metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

from recall_intake.regulator_sources import SOURCES

PAGE_OUTCOMES = ("fetched", "not_modified")


class WatcherMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.pages = Counter(
            "regulator_pages_total",
            "Pages the regulator watcher asked for: fetched (a 200, parsed and imported) or "
            "not_modified (a 304 to a conditional request: nothing new, nothing parsed).",
            ["source", "outcome"],
            registry=registry,
        )
        for source in SOURCES:
            for outcome in PAGE_OUTCOMES:
                self.pages.labels(source, outcome)  # every series from the first scrape, at 0
