"""deploy/tests: the kube_play and two_instances tests run only when asked for (`make
test-kube-play`, `make test-two-instances`, or `pytest -m <marker>`): `make test` leaves them out
for time."""

from __future__ import annotations

import pytest

ON_REQUEST = {
    "kube_play": "plays the Helm chart with podman: make test-kube-play",
    "two_instances": "three brokers and ten service processes: make test-two-instances",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    asked = config.getoption("markexpr") or ""
    for marker, reason in ON_REQUEST.items():
        if marker in asked:
            continue
        for item in items:
            if item.get_closest_marker(marker):
                item.add_marker(pytest.mark.skip(reason=reason))
