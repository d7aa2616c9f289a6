"""Benchmark: the CPU customer-api and refund-logistics spend per alert and per notice they take in.

    .venv/bin/python bench/ingest_cpu.py                        # 20,000 of each, both services
    .venv/bin/python bench/ingest_cpu.py --events 5000 --profile test-artifacts/ingest-profile

The two services run as processes on databases and a topic prefix of their own (ports
``--port-base`` + 4 and + 5; nothing else of the system runs). Once their consumer groups are
stable, the bench produces N ``alert.raised.v1`` of one recall (one per customer, as the matcher
emits them) to alerts.v1, waits until both services hold N alert rows, then N
``notification.sent.v1`` for those alerts to notifications.v1 and waits for N notice rows. CPU
seconds of each service process (bench/cpu_meter.py) over each phase, divided by N, are its cost
per event: what fanout_e2e.py's ``cpu_s_to`` shows for the whole system, for these two consumers
alone and without the notifier's and the matcher's work competing. The services' idle CPU (their
background loops, measured over ``--idle-s`` before the first phase) is reported beside it.
``--profile DIR`` records each service with py-spy (``py-spy`` on PATH or ``--py-spy``) over each
phase, as collapsed stacks (``DIR/<service>-<phase>.txt``) for a flame graph or a grep.
``--against DIR`` runs the same services of another source tree beside them (DIR holding its
``shared/src`` and ``services/<name>/src``, e.g. unpacked from ``git archive <commit>``, first on
their ``PYTHONPATH``), on databases and consumer groups of their own (service name
``<name>-against``) and ports ``--port-base`` + 20 on: both take the same records at the same time,
on a machine in the same state, so ``against_ratio`` (this tree's CPU per event over the other's)
compares the two without the drift between runs that other work on a shared machine causes. One
JSON line on stdout; databases and topics are removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
from cpu_meter import CpuMeter
from matcher_scale import wait_for_group

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "deploy"))

from devstack import SERVICES, Stack  # noqa: E402

from recall_shared import events as ev  # noqa: E402
from recall_shared.envelope import wrap  # noqa: E402
from recall_shared.kafka import KeyedBatchSender, create_client_producer  # noqa: E402
from recall_shared.testing import (  # noqa: E402
    create_database,
    delete_topics,
    drop_database,
    kafka_bootstrap,
    make_alert,
)
from recall_shared.topics import ALERTS, NOTIFICATIONS  # noqa: E402

BENCHED = ("customer-api", "refund-logistics")
SERVICE = {svc.name: svc for svc in SERVICES}


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def alerts(n: int, recall_id: str) -> list[ev.AlertState]:
    return [make_alert(f"cust-{i:07d}", recall_id=recall_id) for i in range(n)]


def notices(states: list[ev.AlertState]) -> list[ev.NoticeSent]:
    now = datetime.now(UTC)
    return [
        ev.NoticeSent(
            notice_id=str(uuid.uuid4()),
            alert_id=a.alert_id,
            customer_id=a.customer_id,
            recall_id=a.recall_id,
            kind="initial",
            alert_version=a.alert_version,
            recipient_role="purchaser",
            sent_at=now,
        )
        for a in states
    ]


async def produce(topic: str, events: list[ev.Event]) -> None:
    producer = create_client_producer(kafka_bootstrap(), "bench-ingest")
    await producer.start()
    try:
        sender = await KeyedBatchSender(producer, topic).start()
        for event in events:
            e = wrap(event, source="/bench/ingest")
            await sender.add(event.partition_key().encode(), e.data, e.headers())
        await sender.flush()
    finally:
        await producer.stop()


async def wait_rows(dsn: dict[str, str], table: str, n: int, timeout: float) -> None:
    """Until every benched database holds n rows in ``table`` (polled every 100 ms)."""
    deadline = time.monotonic() + timeout
    conns = {name: await asyncpg.connect(url) for name, url in dsn.items()}
    try:
        pending = set(conns)
        while pending:
            for name in sorted(pending):
                if await conns[name].fetchval(f"SELECT count(*) FROM {table}") >= n:
                    pending.discard(name)
            if pending and time.monotonic() > deadline:
                raise RuntimeError(f"{sorted(pending)}: fewer than {n} rows in {table}")
            await asyncio.sleep(0.1)
    finally:
        for conn in conns.values():
            await conn.close()


def start_profilers(
    py_spy: str, pids: dict[str, int], out: Path, phase: str
) -> list[subprocess.Popen]:
    out.mkdir(parents=True, exist_ok=True)
    return [
        subprocess.Popen(
            [
                *(py_spy, "record", "--pid", str(pid), "--format", "raw", "--rate", "200"),
                *("--nonblocking", "--output", str(out / f"{name}-{phase}.txt")),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name, pid in pids.items()
    ]


def stop_profilers(profilers: list[subprocess.Popen]) -> None:
    for p in profilers:
        p.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
    for p in profilers:
        p.wait(timeout=30)


AGAINST = "-against"  # the service name (and consumer group) suffix of the --against side


def against_path(tree: Path) -> str:
    """PYTHONPATH putting another source tree's packages before this one's."""
    parts = [tree / "shared" / "src", *(tree / "services" / s.name / "src" for s in SERVICES)]
    return os.pathsep.join(str(p) for p in parts if p.is_dir())


async def run(args: argparse.Namespace) -> dict:
    n = args.events
    run_id = uuid.uuid4().hex[:8]
    prefix = f"ingest-{run_id}."
    names = args.services
    sides = ["", AGAINST] if args.against else [""]
    keys = [name + side for side in sides for name in names]  # a service of a side
    db_names = {
        name + side: f"ingest_{run_id}_{SERVICE[name].package}{side.replace('-', '_')}"
        for side in sides
        for name in names
    }
    urls = {key: await create_database(db) for key, db in db_names.items()}
    dsn = {k: u.replace("postgresql+asyncpg://", "postgresql://") for k, u in urls.items()}
    env = {
        **os.environ,
        "RECALL_ALERTS_ENV": "test",
        "RECALL_ALERTS_TOPIC_PREFIX": prefix,
        "RECALL_ALERTS_JWT_SECRET": "bench-ingest-" + "i" * 40,
        "RECALL_ALERTS_API_KEY_PEPPER": "bench-pepper-" + "p" * 32,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap(),
    }
    log_dir = ROOT / "test-artifacts" / f"ingest-{run_id}"
    stacks: dict[str, Stack] = {}
    for offset, side in zip((0, 20), sides, strict=False):
        side_env = {
            **env,
            **{f"{SERVICE[name].env_prefix}DATABASE_URL": urls[name + side] for name in names},
        }
        if side:
            side_env["PYTHONPATH"] = against_path(Path(args.against))
            for name in names:
                side_env[f"{SERVICE[name].env_prefix}SERVICE_NAME"] = name + side
        stacks[side] = Stack(
            env=side_env,
            ports={svc.name: args.port_base + offset + i + 1 for i, svc in enumerate(SERVICES)},
            log_dir=log_dir / side.strip("-") if side else log_dir,
        )
        stacks[side].log_dir.mkdir(parents=True, exist_ok=True)
    out: dict = {"events": n, "run": run_id, "nproc": os.cpu_count()}
    if args.against:
        out["against"] = args.against
    profilers: list[subprocess.Popen] = []
    try:
        progress(f"ingest {run_id}: migrating, creating topics; building {n:,} events of each")
        for stack in stacks.values():
            for name in names:
                await asyncio.to_thread(stack.run_cli, SERVICE[name], "migrate")
        await asyncio.to_thread(stacks[""].run_cli, SERVICE[names[0]], "create-topics")
        states = alerts(n, str(uuid.uuid4()))
        raised: list[ev.Event] = [ev.AlertRaised(alert=a) for a in states]
        sent: list[ev.Event] = list(notices(states))
        for stack in stacks.values():
            for name in names:
                await asyncio.to_thread(stack.restart_service, name)
        for key in keys:
            await wait_for_group(prefix + key, within_s=60)
        pids = {
            name + side: p.pid
            for side, stack in stacks.items()
            for name, p in stack.processes.items()
        }
        await asyncio.sleep(args.settle_s)  # start-up's tail (joins, first passes of loops)
        meter = CpuMeter(pids)
        meter.start()
        await asyncio.sleep(args.idle_s)
        idle = meter.snapshot()
        out["idle_cpu_ms_per_s"] = {key: round(1000 * idle[key] / args.idle_s, 1) for key in keys}
        out["loadavg_before"] = [round(x, 2) for x in os.getloadavg()]
        py_spy = args.py_spy or shutil.which("py-spy") or "py-spy"
        for phase, topic, events, table in (
            ("alert", ALERTS, raised, "alerts"),
            ("notice", NOTIFICATIONS, sent, "notices"),
        ):
            progress(f"{phase}: producing {n:,}, waiting for the rows")
            if args.profile:
                profilers = start_profilers(py_spy, pids, Path(args.profile), phase)
            meter.start()
            t = time.perf_counter()
            await produce(prefix + topic.name, events)
            await wait_rows(dsn, table, n, args.timeout)
            wall = time.perf_counter() - t
            spent = meter.snapshot()
            stop_profilers(profilers)
            profilers = []
            out[f"{phase}_s"] = round(wall, 2)
            cpu = {key: round(1e6 * spent[key] / n, 1) for key in keys}
            out[f"cpu_us_per_{phase}"] = cpu
            out[f"machine_busy_cores_{phase}"] = round(spent["machine"] / wall, 2)
            if args.against:
                out[f"against_ratio_{phase}"] = {
                    name: round(cpu[name] / cpu[name + AGAINST], 3) for name in names
                }
        out["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
        return out
    finally:
        if profilers:
            stop_profilers(profilers)
        for stack in stacks.values():
            if stack.processes:
                await asyncio.to_thread(stack.stop)
        for db in db_names.values():
            await drop_database(db)
        await delete_topics(prefix)
        progress("cleaned up: databases, topics")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=20_000, help="alerts, and as many notices")
    ap.add_argument("--services", nargs="+", choices=BENCHED, default=list(BENCHED))
    ap.add_argument("--port-base", type=int, default=17100, help="services on base+1 .. base+5")
    ap.add_argument("--idle-s", type=float, default=3.0)
    ap.add_argument("--settle-s", type=float, default=5.0, help="before the idle measurement")
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--profile", help="a directory for py-spy's collapsed stacks per service")
    ap.add_argument("--py-spy", help="the py-spy binary (default: on PATH)")
    ap.add_argument(
        "--against", help="another source tree's services to run beside these (see above)"
    )
    args = ap.parse_args()
    print(json.dumps(asyncio.run(run(args))))


if __name__ == "__main__":
    main()
