"""Run the five services as separate processes: used by ``make run`` and by the end-to-end tests.

    python deploy/devstack.py run        migrate, create topics, start all five, load demo data, wait for Ctrl-C

Each service is ``python -m <package> serve`` with its own environment (port, database, topic prefix),
so the same code starts the demo on 8001-8005 and an isolated copy for a test on other ports.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


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
            raise RuntimeError(
                f"{svc.name} {' '.join(args)} failed ({result.returncode}):\n{result.stderr[-3000:]}"
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
                f"ports already in use: {', '.join(busy)}. Is another `make run` (or a service) still running? "
                "Stop it first, or set <SERVICE>_HTTP_PORT."
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
                    raise RuntimeError(
                        f"{name} exited with {proc.returncode}; see {self.log_dir / (name + '.log')}"
                    )
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


def _port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def default_stack() -> Stack:
    env = dict(os.environ)
    env.setdefault("RECALL_ALERTS_ENV", "development")
    return Stack(env=env, ports={s.name: s.port for s in SERVICES}, log_dir=ROOT / ".data" / "logs")


def run(args: argparse.Namespace) -> int:
    from demo import load_demo  # deploy/demo.py, beside this file

    stack = default_stack()
    print("==> migrating databases and creating topics")
    stack.prepare()
    print("==> starting the five services (logs in .data/logs/)")
    stack.start()
    stopping = False
    loading = True

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        if loading:
            raise KeyboardInterrupt  # abort the demo load; the finally block stops the services

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        print("==> loading demo data")
        info = asyncio.run(load_demo(stack))
        loading = False
        print(
            "\nRecall Alerts is running.\n"
            f"  recall-intake     {stack.url('recall-intake')}/docs   (seller key: {info['seller_key']})\n"
            f"                                                 (operator key: {info['operator_key']})\n"
            f"  purchase-matcher  {stack.url('purchase-matcher')}/docs\n"
            f"  notifier          {stack.url('notifier')}/docs\n"
            f"  refund-logistics  {stack.url('refund-logistics')}/docs\n"
            f"  customer-api      {stack.url('customer-api')}/docs\n"
            f"  customer pages    {stack.url('customer-api')}/dev/signin   (sign in as a demo customer: "
            f"the orders banner and the recalls page)\n"
            f"  mail (SMTP sink)  http://127.0.0.1:8025\n"
            f"  metrics           {stack.url('notifier')}/metrics (each service has /metrics, /healthz, /readyz)\n"
        )
        print("Demo customers (bearer tokens for customer-api, valid 12 h):")
        for customer, token in info["tokens"].items():
            print(f"  {customer}: {token}")
        print(
            f"\nTry: curl -H 'Authorization: Bearer {info['tokens']['alice']}' {stack.url('customer-api')}/v1/me/banner"
        )
        print("\nPress Ctrl-C to stop.")
        while not stopping:
            for name, proc in stack.processes.items():
                if proc.poll() is not None:
                    print(
                        f"{name} exited with {proc.returncode}; see .data/logs/{name}.log",
                        file=sys.stderr,
                    )
                    stopping = True
            time.sleep(0.5)
    finally:
        print("\n==> stopping services")
        stack.stop()
    return 0


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
