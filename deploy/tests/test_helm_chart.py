"""The Helm chart (deploy/helm/recall-alerts) passes `helm lint`, and `helm template` renders what a
cluster needs: per service a Deployment with /healthz and /readyz probes and resources, a Service, a
PodDisruptionBudget and its settings from ConfigMaps and the operator's Secret (no secret in the
chart); a migration Job and a topic-creation Job that run before the pods, with commands the
services have. deploy/k8s/recall-alerts.yaml is the chart's default rendering (`make
k8s-manifests`).

helm is built once from the Go module proxy into .cache/tools (a few minutes cold); then this module
takes a few seconds."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import yaml  # PyYAML ships no types (uvicorn[standard] brings it)

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "deploy"))

from devstack import SERVICES  # noqa: E402
from helm import CHART, MANIFESTS, default_manifests, helm, render  # noqa: E402

from recall_intake.app import create_app  # noqa: E402
from recall_intake.settings import Settings  # noqa: E402
from recall_shared.cli import ServiceCli  # noqa: E402


def _docs(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


def _of(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


@pytest.fixture(scope="module")
def docs() -> list[dict[str, Any]]:
    return _docs(render("rel"))


def test_the_chart_lints() -> None:
    out = helm("lint", "--strict", str(CHART))
    assert "1 chart(s) linted, 0 chart(s) failed" in out


def test_each_service_has_a_probed_deployment_a_service_and_a_budget(
    docs: list[dict[str, Any]],
) -> None:
    deployments, services = _of(docs, "Deployment"), _of(docs, "Service")
    budgets = _of(docs, "PodDisruptionBudget")
    for svc in SERVICES:
        name = f"rel-recall-alerts-{svc.name}"
        spec = deployments[name]["spec"]
        assert spec["replicas"] == 2
        (container,) = spec["template"]["spec"]["containers"]
        assert container["command"] == [svc.name, "serve"]
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": svc.port}
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": svc.port}
        assert container["resources"]["requests"]["cpu"]
        assert container["resources"]["limits"]["memory"]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert services[name]["spec"]["ports"][0]["targetPort"] == svc.port
        assert budgets[name]["spec"]["maxUnavailable"] == 1
        assert budgets[name]["spec"]["selector"]["matchLabels"] == spec["selector"]["matchLabels"]


def test_settings_come_from_config_maps_and_the_operators_secret(
    docs: list[dict[str, Any]],
) -> None:
    assert not _of(docs, "Secret"), "the chart must not carry secrets"
    maps = _of(docs, "ConfigMap")
    for svc in SERVICES:
        (container,) = _of(docs, "Deployment")[f"rel-recall-alerts-{svc.name}"]["spec"]["template"][
            "spec"
        ]["containers"]
        referenced = [ref["configMapRef"]["name"] for ref in container["envFrom"]]
        assert all(name in maps for name in referenced)
        assert maps[f"rel-recall-alerts-{svc.name}"]["data"][f"{svc.env_prefix}HTTP_PORT"] == str(
            svc.port
        )
        from_secret = {e["name"]: e["valueFrom"]["secretKeyRef"]["name"] for e in container["env"]}
        assert from_secret[f"{svc.env_prefix}DATABASE_URL"] == "recall-alerts"
        assert {"RECALL_ALERTS_JWT_SECRET", "RECALL_ALERTS_API_KEY_PEPPER"} <= from_secret.keys()
    shared = maps["rel-recall-alerts-config"]["data"]
    assert shared["RECALL_ALERTS_ENV"] == "production"
    assert shared["RECALL_ALERTS_TOPIC_REPLICATION_FACTOR"] == "3"


def test_migrations_and_topics_are_jobs_that_run_before_the_pods(
    docs: list[dict[str, Any]],
) -> None:
    jobs = _of(docs, "Job")
    migrate, topics = jobs["rel-recall-alerts-migrate"], jobs["rel-recall-alerts-create-topics"]
    for job in (migrate, topics):
        assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    commands = [c["command"] for c in migrate["spec"]["template"]["spec"]["containers"]]
    assert commands == [[svc.name, "migrate"] for svc in sorted(SERVICES, key=lambda s: s.name)]
    (creator,) = topics["spec"]["template"]["spec"]["containers"]
    assert creator["command"] == ["recall-intake", "create-topics"]
    # The commands the Jobs and pods run are the shared command line's, which every service has.
    cli = ServiceCli(settings_factory=Settings, create_app=create_app, migrations_dir=ROOT)
    assert {"serve", "migrate", "create-topics"} <= cli.handlers.keys()


def test_autoscaling_renders_bounded_autoscalers_and_leaves_replicas_to_them(
    tmp_path: Path,
) -> None:
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump({"defaults": {"autoscaling": {"enabled": True}}}))
    docs = _docs(render("rel", values))
    autoscalers = _of(docs, "HorizontalPodAutoscaler")
    assert len(autoscalers) == len(SERVICES)
    assert all(a["spec"]["maxReplicas"] == 3 for a in autoscalers.values())
    assert all("replicas" not in d["spec"] for d in _of(docs, "Deployment").values())


def test_the_committed_manifests_are_the_charts_default_rendering() -> None:
    assert MANIFESTS.read_text() == default_manifests(), "run `make k8s-manifests`"
