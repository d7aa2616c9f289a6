"""Run the five services as separate processes: used by ``make run`` and by the end-to-end tests.

    python deploy/devstack.py run

starts the infrastructure that is not running yet, migrates, creates the topics, starts all
five services, loads the demo data and waits for Ctrl-C; then it stops the services and the
infrastructure this run started.

Each service is ``python -m <package> serve`` with its own environment (port, database, topic
prefix), so the same code starts the demo on 8001-8005 and an isolated copy for a test on other
ports.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
PYTHON = sys.executable


@dataclass(frozen=True)
class Component:
    """One piece of local infrastructure, driven by its deploy/ script (start, stop and status)."""

    name: str
    script: Path
    before_start: tuple[str, ...] = ()  # idempotent steps run every time, before `start`
    after_start: tuple[str, ...] = ()  # idempotent steps run every time, after `start`


INFRA = (
    Component(
        "PostgreSQL",
        DEPLOY / "postgres" / "postgres.sh",
        before_start=("install",),
        after_start=("create-databases",),
    ),
    Component("Kafka", DEPLOY / "kafka" / "kafka.sh"),
    Component("SMTP sink", DEPLOY / "smtp" / "smtp.sh"),
)


@dataclass
class Infra:
    """Starts what is not running yet and, on :meth:`down`, stops only that.

    What was running before (another ``make run``, ``make infra-up``, a shared server) is left
    alone, and :meth:`down` says so and how to stop it.
    """

    env: dict[str, str]
    components: tuple[Component, ...]
    started: list[Component] = field(default_factory=list)

    def _step(self, component: Component, step: str, *, quiet: bool = False) -> int:
        # Its own session: a second Ctrl-C while stopping must not kill the stop scripts half-way.
        return subprocess.run(
            [str(component.script), step],
            env=self.env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL if quiet else None,
            stderr=subprocess.DEVNULL if quiet else None,
            start_new_session=step == "stop",
            check=False,
        ).returncode

    def running(self, component: Component) -> bool:
        return self._step(component, "status", quiet=True) == 0

    def up(self) -> None:
        for component in self.components:
            for step in component.before_start:
                self._check(component, step)
            if not self.running(component):
                # Recorded before it is up: an interrupted start may leave a process behind.
                self.started.append(component)
            self._check(component, "start")  # also waits until ready when it was already starting
            for step in component.after_start:
                self._check(component, step)

    def _check(self, component: Component, step: str) -> None:
        if self._step(component, step) != 0:
            raise RuntimeError(f"{component.script.relative_to(ROOT)} {step} failed (see above)")

    def down(self) -> None:
        if self.started:
            print(f"==> stopping what this run started: {', '.join(c.name for c in self.started)}")
        for component in reversed(self.started):
            self._step(component, "stop")
        kept = [c.name for c in self.components if c not in self.started and self.running(c)]
        if kept:
            print(
                f"Left running (it was running before this run): {', '.join(kept)}. "
                "`make infra-down` stops it."
            )
        self.started.clear()


@dataclass(frozen=True)
class ServiceDef:
    name: str
    package: str
    env_prefix: str
    port: int

    @property
    def db_name(self) -> str:
        return self.package


SERVICES = (
    ServiceDef("recall-intake", "recall_intake", "RECALL_INTAKE_", 8001),
    ServiceDef("purchase-matcher", "purchase_matcher", "PURCHASE_MATCHER_", 8002),
    ServiceDef("notifier", "notifier", "NOTIFIER_", 8003),
    ServiceDef("refund-logistics", "refund_logistics", "REFUND_LOGISTICS_", 8004),
    ServiceDef("customer-api", "customer_api", "CUSTOMER_API_", 8005),
)


@dataclass
class Stack:
    """A set of running services and how to reach them."""

    env: dict[str, str]
    ports: dict[str, int]
    log_dir: Path
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def service_env(self, svc: ServiceDef) -> dict[str, str]:
        env = dict(self.env)
        env[f"{svc.env_prefix}HTTP_PORT"] = str(self.ports[svc.name])
        return env

    def run_cli(self, svc: ServiceDef, *args: str, capture: bool = False) -> str:
        result = subprocess.run(
            [PYTHON, "-m", svc.package, *args],
            env=self.service_env(svc),
            cwd=ROOT,
            text=True,
            stdout=subprocess.PIPE if capture else None,
            stderr=subprocess.PIPE,
            check=False,
        )
        if result.returncode != 0:
            command = " ".join(args)
            raise RuntimeError(
                f"{svc.name} {command} failed ({result.returncode}):\n{result.stderr[-3000:]}"
            )
        return result.stdout.strip() if capture else ""

    def prepare(self) -> None:
        """Migrate every database and create the topics (both idempotent)."""
        for svc in SERVICES:
            self.run_cli(svc, "migrate")
        self.run_cli(SERVICES[0], "create-topics")

    def start(self, timeout: float = 90.0) -> None:
        busy = [f"{name} ({port})" for name, port in self.ports.items() if _port_in_use(port)]
        if busy:
            raise RuntimeError(
                f"ports already in use: {', '.join(busy)}. Is another `make run` (or a service) "
                "still running? Stop it first, or set <SERVICE>_HTTP_PORT."
            )
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for svc in SERVICES:
            log = open(self.log_dir / f"{svc.name}.log", "ab")  # noqa: SIM115 - owned by the child
            self.processes[svc.name] = subprocess.Popen(
                [PYTHON, "-m", svc.package, "serve"],
                env=self.service_env(svc),
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        pending = {svc.name for svc in SERVICES}
        last: dict[str, str] = {}
        while pending and time.monotonic() < deadline:
            for name in sorted(pending):
                proc = self.processes[name]
                if proc.poll() is not None:
                    log_file = self.log_dir / f"{name}.log"
                    raise RuntimeError(f"{name} exited with {proc.returncode}; see {log_file}")
                try:
                    r = httpx.get(self.url(name) + "/readyz", timeout=2)
                    if r.status_code == 200:
                        pending.discard(name)
                    else:
                        last[name] = r.text
                except httpx.HTTPError as exc:
                    last[name] = repr(exc)
            time.sleep(0.3)
        if pending:
            self.stop()
            raise RuntimeError(
                f"not ready within {timeout}s: {', '.join(sorted(pending))}; last: {last}"
            )

    def restart_service(self, name: str, timeout: float = 60.0) -> None:
        """Start one service again after its process ended (a crash test); wait until ready."""
        svc = next(s for s in SERVICES if s.name == name)
        old = self.processes.get(name)
        if old is not None and old.poll() is None:
            raise RuntimeError(f"{name} is still running (pid {old.pid})")
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - owned by the child
        self.processes[name] = proc = subprocess.Popen(
            [PYTHON, "-m", svc.package, "serve"],
            env=self.service_env(svc),
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                if httpx.get(self.url(name) + "/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass  # not listening yet
            time.sleep(0.3)
        raise RuntimeError(f"{name} not ready after a restart; see {self.log_dir / name}.log")

    def stop(self, timeout: float = 20.0) -> None:
        for proc in self.processes.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for name, proc in self.processes.items():
            try:
                proc.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                print(f"{name} did not stop in time; killing", file=sys.stderr)
                proc.kill()
                proc.wait()
        self.processes.clear()


PROMETHEUS_PORT = 9090


def start_prometheus(
    data_dir: Path, port: int = PROMETHEUS_PORT, log: Path | None = None
) -> subprocess.Popen | None:
    """A local Prometheus scraping the five services with the alert rules of deploy/observability/
    (Debian's prometheus package, which deploy/deps.sh installs); None when it is not installed or
    the port is taken."""
    binary = shutil.which("prometheus")
    if binary is None or _port_in_use(port):
        return None
    data_dir.mkdir(parents=True, exist_ok=True)
    out = open(log, "ab") if log is not None else subprocess.DEVNULL  # noqa: SIM115 - the child owns it
    return subprocess.Popen(
        [
            binary,
            f"--config.file={DEPLOY / 'observability' / 'prometheus.yml'}",
            f"--storage.tsdb.path={data_dir}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=out,
        stderr=subprocess.STDOUT,
    )


def _port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def default_stack() -> Stack:
    env = dict(os.environ)
    env.setdefault("RECALL_ALERTS_ENV", "development")
    return Stack(env=env, ports={s.name: s.port for s in SERVICES}, log_dir=ROOT / ".data" / "logs")


def run(args: argparse.Namespace) -> int:
    stack = default_stack()
    infra = Infra(env={**stack.env, "PYTHON": PYTHON}, components=INFRA)
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        if stopping:
            print("\n(already stopping; one moment)", file=sys.stderr)
            return
        stopping = True
        raise KeyboardInterrupt  # unwinds what runs; the finally blocks stop what was started

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    exit_code = 0
    try:
        print("==> infrastructure: PostgreSQL, Kafka, SMTP sink (started only where not running)")
        infra.up()
        try:
            exit_code = _serve(stack)
        finally:
            stopping = True  # from here on a further Ctrl-C only prints; the clean-up goes on
            print("\n==> stopping services")
            stack.stop()
    except KeyboardInterrupt:
        pass
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        exit_code = 1
    finally:
        stopping = True
        infra.down()
    return exit_code


def _serve(stack: Stack) -> int:
    """Migrate, start the services, load the demo data, wait for Ctrl-C (or a service's exit)."""
    from demo import load_demo  # deploy/demo.py, beside this file

    print("==> migrating databases and creating topics")
    stack.prepare()
    print("==> starting the five services (logs in .data/logs/)")
    stack.start()
    prometheus = start_prometheus(
        ROOT / ".data" / "prometheus", log=stack.log_dir / "prometheus.log"
    )
    if prometheus is not None:
        stack.processes["prometheus"] = prometheus  # stopped with the services
    print("==> loading demo data")
    info = asyncio.run(load_demo(stack))
    print(
        "\nRecall Alerts is running.\n"
        f"  recall-intake     {stack.url('recall-intake')}/docs   "
        f"(seller key: {info['seller_key']})\n"
        f"                                                 (operator key: {info['operator_key']})\n"
        f"  purchase-matcher  {stack.url('purchase-matcher')}/docs\n"
        f"  notifier          {stack.url('notifier')}/docs\n"
        f"  refund-logistics  {stack.url('refund-logistics')}/docs\n"
        f"  customer-api      {stack.url('customer-api')}/docs\n"
        f"  customer pages    {stack.url('customer-api')}/dev/signin   "
        "(sign in as a demo customer: the orders banner and the recalls page)\n"
        f"  mail (SMTP sink)  http://127.0.0.1:8025\n"
        f"  metrics           {stack.url('notifier')}/metrics "
        "(each service has /metrics, /healthz, /readyz)\n"
        + (
            f"  prometheus        http://127.0.0.1:{PROMETHEUS_PORT}/alerts   "
            "(rules: deploy/observability/alerts.yml)\n"
            if prometheus is not None
            else ""
        )
    )
    print("Demo customers (bearer tokens for customer-api, valid 12 h):")
    for customer, token in info["tokens"].items():
        print(f"  {customer}: {token}")
    alice = info["tokens"]["alice"]
    print(
        f"\nTry: curl -H 'Authorization: Bearer {alice}' {stack.url('customer-api')}/v1/me/banner"
    )
    print("\nPress Ctrl-C to stop.")
    while True:
        for name, proc in stack.processes.items():
            if proc.poll() is not None:
                print(
                    f"{name} exited with {proc.returncode}; see .data/logs/{name}.log",
                    file=sys.stderr,
                )
                return 1
        time.sleep(0.5)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="Run the whole system with demo data until Ctrl-C")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
