"""deploy/tests: the kube_play tests run only when asked for (`make test-kube-play`, or
`pytest -m kube_play`): they play the whole chart, which `make test` leaves out for time."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "kube_play" in (config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason="plays the Helm chart with podman: make test-kube-play")
    for item in items:
        if item.get_closest_marker("kube_play"):
            item.add_marker(skip)
