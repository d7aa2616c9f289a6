"""The Helm chart, played: its manifests (podman values: host network, the local image) run with
`podman kube play`: the migration and topic Jobs first (as pods: podman plays no Jobs), then the
five Deployments, and the walking-skeleton end-to-end test passes against the services in
containers. Marked kube_play and left out of `make test` (about 75 s here once the image is
built, mostly five Python processes starting on two cores): `make test-kube-play` runs it."""

from __future__ import annotations

import asyncio
import base64
import json
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml  # PyYAML ships no types (uvicorn[standard] brings it)

from recall_shared.testing import create_database, delete_topics, drop_database, kafka_bootstrap
from recall_shared.trace_sink import TraceSink

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "deploy"))
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

from containers import build_image, podman  # noqa: E402
from devstack import SERVICES, ServiceDef, Stack  # noqa: E402
from helm import render  # noqa: E402

# tests/e2e, put on the path above (mypy does not follow sys.path changes)
from test_walking_skeleton import (  # type: ignore[import-not-found]  # noqa: E402
    JWT_SECRET,
    test_one_recall_from_seller_to_refund,
)

pytestmark = [pytest.mark.kube_play, pytest.mark.e2e, pytest.mark.integration]

PODMAN_VALUES = ROOT / "deploy" / "k8s" / "podman-values.yaml"
PORT_BASE = 18200  # the services on 18201-18205: not the fixed ports, nor tests/e2e's

__all__ = ["test_one_recall_from_seller_to_refund"]  # collected here too, against the containers


class PlayedStack(Stack):
    """The services as pods of `podman kube play`; a command runs in the service's container."""

    containers: dict[str, str]

    def run_cli(self, svc: ServiceDef, *args: str, capture: bool = False) -> str:
        result = podman("exec", self.containers[svc.name], svc.name, *args, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{svc.name} {' '.join(args)} failed:\n{result.stderr[-3000:]}")
        return result.stdout.strip() if capture else ""


def _job_as_pod(job: dict[str, Any]) -> dict[str, Any]:
    """podman plays Pods and Deployments, not Jobs: the Job's pod template, as a Pod."""
    template = job["spec"]["template"]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": job["metadata"]["name"], "labels": template["metadata"]["labels"]},
        "spec": template["spec"],
    }


def _play(docs: list[dict[str, Any]], path: Path) -> None:
    path.write_text(yaml.safe_dump_all(docs))
    podman("kube", "play", str(path), timeout=180)


def _run_job(job: dict[str, Any], path: Path) -> None:
    pod = _job_as_pod(job)
    _play([pod], path)
    name = pod["metadata"]["name"]
    for container in pod["spec"]["containers"]:
        full = f"{name}-{container['name']}"
        code = podman("wait", full, timeout=180).stdout.strip()
        if code != "0":
            logs = podman("logs", full, check=False)
            raise AssertionError(f"job {full} exited {code}:\n{logs.stdout}{logs.stderr}"[-4000:])


def _wait_ready(stack: Stack, timeout: float = 120) -> None:
    deadline, pending, last = time.monotonic() + timeout, {s.name for s in SERVICES}, {}
    while pending and time.monotonic() < deadline:
        for name in sorted(pending):
            try:
                r = httpx.get(stack.url(name) + "/readyz", timeout=2)
                if r.status_code == 200:
                    pending.discard(name)
                last[name] = r.text
            except httpx.HTTPError as exc:
                last[name] = repr(exc)
        time.sleep(0.5)
    assert not pending, f"not ready in {timeout} s: {sorted(pending)}; last: {last}"


@pytest.fixture(scope="module")
def trace_sink() -> Iterator[TraceSink]:
    """The OTLP receiver the pods export their spans to (host network: 127.0.0.1 is the host's),
    for the walking skeleton's one-recall-one-trace check."""
    sink = TraceSink().start()
    try:
        yield sink
    finally:
        sink.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, trace_sink: TraceSink) -> Iterator[PlayedStack]:
    build_image()
    run = uuid.uuid4().hex[:8]
    release, work = f"kp{run}", tmp_path_factory.mktemp("kube-play")
    db_names = {svc.name: f"kp_{run}_{svc.package}" for svc in SERVICES}
    urls = {name: asyncio.run(create_database(db)) for name, db in db_names.items()}
    prefix = f"kp-{run}."
    ports = {svc.name: PORT_BASE + i + 1 for i, svc in enumerate(SERVICES)}
    # What podman kube play reads a secretKeyRef from: a podman secret holding a JSON object of
    # base64 values (the operator's Kubernetes Secret, in a cluster).
    secret = {
        "jwt-secret": JWT_SECRET,
        "api-key-pepper": "kube-play-pepper-" + "p" * 32,
        **{f"{name}-database-url": url for name, url in urls.items()},
    }
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in secret.items()}
    secret_file = work / "secret.json"
    secret_file.write_text(json.dumps(encoded))
    podman("secret", "create", release, str(secret_file))
    run_values = work / "values.yaml"
    run_values.write_text(
        yaml.safe_dump(
            {
                "secret": {"name": release},
                "config": {
                    "RECALL_ALERTS_TOPIC_PREFIX": prefix,
                    "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap(),
                    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": trace_sink.endpoint,
                    "OTEL_BSP_SCHEDULE_DELAY": "200",  # export every 0.2 s, not 5 s
                },
                "services": {
                    **{name: {"port": port} for name, port in ports.items()},
                    "notifier": {
                        "port": ports["notifier"],
                        "env": {
                            "NOTIFIER_CUSTOMER_PORTAL_URL": f"http://127.0.0.1:{ports['customer-api']}",
                            "NOTIFIER_SENDER_POLL_S": "0.5",
                        },
                    },
                },
            }
        )
    )
    docs = [d for d in yaml.safe_load_all(render(release, PODMAN_VALUES, run_values)) if d]
    jobs = {
        d["metadata"]["labels"]["app.kubernetes.io/component"]: d
        for d in docs
        if d["kind"] == "Job"
    }
    played = [work / "migrate.yaml", work / "create-topics.yaml", work / "services.yaml"]
    s = PlayedStack(
        env={
            "RECALL_ALERTS_TOPIC_PREFIX": prefix,
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap(),
        },
        ports=ports,
        log_dir=work,
    )
    s.containers = {
        svc.name: f"{release}-recall-alerts-{svc.name}-pod-0-{svc.name}" for svc in SERVICES
    }
    try:
        _run_job(jobs["migrate"], played[0])
        _run_job(jobs["create-topics"], played[1])
        _play([d for d in docs if d["kind"] in ("ConfigMap", "Deployment")], played[2])
        _wait_ready(s)
        yield s
    finally:
        for path in reversed(played):
            if path.exists():
                podman("kube", "down", str(path), check=False, timeout=120)
        podman("secret", "rm", release, check=False)
        for db in db_names.values():
            asyncio.run(drop_database(db))
        asyncio.run(delete_topics(prefix))


def test_every_service_runs_in_its_container(stack: PlayedStack) -> None:
    """The services answer from the pods (not from processes of this test): each container runs
    its service's command as the image's user."""
    for svc in SERVICES:
        inspect = json.loads(podman("inspect", stack.containers[svc.name]).stdout)[0]
        assert inspect["State"]["Running"] is True
        assert inspect["Config"]["User"].split(":")[0] == "10001"
        assert [inspect["Path"], *inspect["Args"]] == [svc.name, "serve"]
