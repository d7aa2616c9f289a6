"""deploy/observability/: the alert rules pass ``promtool check rules`` and their unit tests
(``promtool test rules``), the Prometheus config is valid, and every metric the rules and the
dashboard query is one the services define (or prometheus_client's process and Python collectors,
or Prometheus' own ``up``). promtool comes from Debian's prometheus package (deploy/deps.sh):
without it these tests fail, they do not skip."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
OBSERVABILITY = ROOT / "deploy" / "observability"
SOURCES = [ROOT / "shared" / "src", *sorted((ROOT / "services").glob("*/src"))]
# Families that come from prometheus_client's collectors or from Prometheus itself.
BUILT_IN = re.compile(r"^(process_|python_|up$)")
PROMQL_WORDS = {
    "sum", "max", "min", "avg", "count", "by", "without", "rate", "increase", "delta", "deriv",
    "histogram_quantile", "and", "or", "unless", "on", "ignoring", "offset", "bool",
}  # fmt: skip


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    found = shutil.which("promtool")
    assert found, "promtool not found: run deploy/deps.sh (Debian package prometheus)"
    return subprocess.run(
        [found, *args], cwd=OBSERVABILITY, capture_output=True, text=True, timeout=120
    )


def test_the_rules_are_valid_and_their_unit_tests_pass() -> None:
    checked = promtool("check", "rules", "alerts.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = promtool("test", "rules", "alerts.test.yml")
    assert tested.returncode == 0 and "SUCCESS" in tested.stdout, tested.stdout + tested.stderr


def test_the_prometheus_config_is_valid() -> None:
    checked = promtool("check", "config", "prometheus.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_every_alert_is_unit_tested_and_has_a_runbook() -> None:
    rules = yaml.safe_load((OBSERVABILITY / "alerts.yml").read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"]}
    tests = yaml.safe_load((OBSERVABILITY / "alerts.test.yml").read_text())
    tested = {
        t["alertname"]
        for case in tests["tests"]
        for t in case["alert_rule_test"]
        if t.get("exp_alerts")
    }
    assert alerts == tested, "an alert whose firing no test shows"
    operations = (ROOT / "docs" / "operations.md").read_text()
    for alert in alerts:
        assert f"#### {alert}" in operations, f"no runbook for {alert} in docs/operations.md"


def _metric_names(expr: str) -> set[str]:
    bare = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    bare = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", bare)  # grouping labels
    bare = re.sub(r"\[[^\]]*\]", "", bare)  # ranges
    bare = re.sub(r'"[^"]*"', "", bare)
    return {
        word
        for word in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", bare)
        if word not in PROMQL_WORDS and not re.fullmatch(r"\d+[smhd]?", word)
    }


def _defined(name: str) -> bool:
    if BUILT_IN.match(name):
        return True
    family = re.sub(r"_(bucket|count|sum|total)$", "", name)
    for source in SOURCES:
        for path in source.rglob("*.py"):
            text = path.read_text()
            if f'"{name}"' in text or f'"{family}"' in text or f'"{family}_total"' in text:
                return True
    return False


def _exprs() -> list[str]:
    rules = yaml.safe_load((OBSERVABILITY / "alerts.yml").read_text())
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    dashboard = json.loads((OBSERVABILITY / "grafana-dashboard.json").read_text())
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert panels and all(p.get("targets") for p in panels)
    exprs += [t["expr"] for p in panels for t in p["targets"]]
    return exprs


def test_rules_and_dashboard_query_only_metrics_that_exist() -> None:
    names = set().union(*(_metric_names(e) for e in _exprs()))
    assert {"dead_letters_pending", "consumer_lag", "outbox_oldest_age_seconds"} <= names
    missing = sorted(n for n in names if not _defined(n))
    assert not missing, f"queried but defined by no service: {missing}"


# A service's own metric family: the name a GaugeQuery, Counter, Gauge or Histogram is created with.
SERVICE_METRIC = re.compile(r'\b(?:GaugeQuery|Counter|Gauge|Histogram)\(\s*"([a-z_:][a-z0-9_:]*)"')


def _service_metrics() -> set[str]:
    """The families the five services define themselves (recall_shared's generic ones aside)."""
    return {
        re.sub(r"_total$", "", name)
        for source in SOURCES[1:]
        for path in source.rglob("*.py")
        for name in SERVICE_METRIC.findall(path.read_text())
    }


def test_the_dashboard_shows_every_metric_a_service_defines() -> None:
    dashboard = json.loads((OBSERVABILITY / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] if p["type"] != "row" for t in p["targets"]]
    shown = {re.sub(r"_total$", "", n) for e in exprs for n in _metric_names(e)}
    defined = _service_metrics()
    assert {"notices_reported", "alerts_changed", "remedy_cases"} <= defined
    assert not defined - shown, f"defined but on no dashboard panel: {sorted(defined - shown)}"


def test_the_check_of_names_catches_a_metric_nobody_defines() -> None:
    assert not _defined("refunds_that_never_existed_seconds")
    assert _metric_names('sum by (job) (rate(x_total{a="b"}[5m])) > 3') == {"x_total"}


def test_the_local_prometheus_of_make_run_loads_the_rules(tmp_path: Path) -> None:
    """devstack's Prometheus (``make run``) on a free port: it starts with the config, loads every
    alert rule, and stops on SIGTERM."""
    import socket
    import sys
    import time

    import httpx

    sys.path.insert(0, str(ROOT / "deploy"))
    from devstack import start_prometheus  # deploy/ is not a package

    assert shutil.which("prometheus"), "prometheus not found: run deploy/deps.sh"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = start_prometheus(tmp_path / "data", port=port, log=tmp_path / "prometheus.log")
    assert process is not None
    try:
        deadline, rules = time.monotonic() + 30, list[str]()
        while time.monotonic() < deadline and not rules:
            try:
                got = httpx.get(f"http://127.0.0.1:{port}/api/v1/rules", timeout=2).json()
                rules = [r["name"] for g in got["data"]["groups"] for r in g["rules"]]
            except httpx.HTTPError:
                time.sleep(0.3)
        assert len(rules) == 7 and "OutboxStuck" in rules, (tmp_path / "prometheus.log").read_text()
    finally:
        process.terminate()
        assert process.wait(timeout=20) == 0
