"""Benchmark: one recall reaching N customers through the whole running system, to what they see.

    .venv/bin/python bench/fanout_e2e.py                      # 100,000 customers (the issue's size)
    .venv/bin/python bench/fanout_e2e.py --customers 10000    # a quick run
    .venv/bin/python bench/fanout_e2e.py --customers 1000000  # the 1M target (last banner <= 60 s)

The five services run as processes (``deploy/devstack.py``'s Stack) on ports of their own
(``--port-base``), with fresh databases and a unique topic prefix on the shared Kafka and
PostgreSQL, sending to a private instance of the local SMTP sink (deploy/smtp/smtp_sink.py on a free
port, its Maildir in a temporary directory). Set-up, outside the clock: N customers, each with one
order line of the recalled product and one of another product, COPYed into the matcher's purchase
index; their contacts COPYed into the notifier's contacts (addresses on a domain of this run's own);
the listing published on catalog.listings.v1; a seller key issued and the recall created as a draft
through recall-intake's API. The clock starts when the seller's ``POST /v1/recalls/{id}/publish``
is sent and stops, for each of these on its own, at:
- ``topic``: the last of the N records on alerts.v1 (end offsets polled every 50 ms): the matcher's
  emit time, the limit the customer-facing times are compared with (``matcher_pass_s`` is the
  matcher's own account of its pass, from its "reconciled recall" log line);
- ``rows``: customer-api's database holding N alert rows of the recall (polled every 250 ms);
- ``banner``: the last of a sample of affected customers (``--banner-sample``, always with the last
  customer id) seeing the recall in ``GET /v1/me/banner`` with a bearer token (each customer not yet
  seeing it asked every 0.5 s);
- ``email``: the last of the N messages of this run stored by the sink (its ``X-Sink-Received-At``).
Limits measured in the same run, once the system is stopped: a bare COPY (asyncpg
copy_records_to_table) of the same N rows into a table shaped like customer-api's ``alerts`` (its
indexes too), and plain aiosmtplib sending N messages of the system's size over as many connections
as the notifier has (``--smtp-connections``) to the same sink. Peak RSS per service is VmHWM from
/proc. CPU seconds per service and for the whole machine, from publication to each goal
(``cpu_s_to``, bench/cpu_meter.py), say what the run cost whatever else the machine was doing, and
how busy it was (``busy_cores_to_banner``). Progress goes to stderr, the result as one JSON line
to stdout. Databases, topics and the sink are removed at the end; service logs stay in
test-artifacts/fanout-<run>/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import aiosmtplib
import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from cpu_meter import CpuMeter
from matcher_scale import COLUMNS, count_raised, peak_rss_mb, wait_for_group
from notifier_throughput import start_sink

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "deploy"))

from devstack import SERVICES, Stack  # noqa: E402

from recall_shared import events as ev  # noqa: E402
from recall_shared.auth import issue_customer_token  # noqa: E402
from recall_shared.envelope import wrap  # noqa: E402
from recall_shared.kafka import create_client_producer  # noqa: E402
from recall_shared.testing import (  # noqa: E402
    create_database,
    delete_topics,
    drop_database,
    kafka_bootstrap,
)
from recall_shared.topics import ALERTS, CATALOG_LISTINGS  # noqa: E402

JWT_SECRET = "bench-fanout-" + "f" * 40
SMTP_HOST = "127.0.0.1"
SERVICE = {svc.name: svc for svc in SERVICES}
ALERT_COLUMNS = (
    "alert_id",
    "customer_id",
    "recall_id",
    "alert_version",
    "status",
    "resolution",
    "severity_rank",
    "state",
    "acknowledged_at",
    "not_affected_at",
    "created_at",
    "updated_at",
)


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class MailCount:
    """Messages of this run in the sink's Maildir, told apart by their envelope recipient's domain.
    Each new file's head is read once; a message's time is the sink's X-Sink-Received-At (wall
    clock)."""

    def __init__(self, maildir: Path) -> None:
        self.new = maildir / "new"
        self.baseline = set(os.listdir(self.new))
        self.seen: set[str] = set()
        self.mine: dict[str, dict[str, float]] = {}  # domain -> file name -> received at

    def scan(self, domains: tuple[str, ...]) -> None:
        for name in os.listdir(self.new):
            if name in self.baseline or name in self.seen:
                continue
            try:
                with open(self.new / name, "rb") as fh:
                    head = fh.read(1024).decode("utf-8", "replace")
            except FileNotFoundError:
                continue
            if "X-Sink-Received-At:" not in head:
                continue  # still being written by the sink: look again next time
            self.seen.add(name)
            fields = dict(line.split(": ", 1) for line in head.splitlines()[:4] if ": " in line)
            rcpt = fields.get("X-Sink-Rcpt-To", "")
            for d in domains:
                if rcpt.endswith("@" + d):
                    self.mine.setdefault(d, {})[name] = float(fields["X-Sink-Received-At"])

    def count(self, domain: str) -> int:
        return len(self.mine.get(domain, {}))

    def times(self, domain: str) -> list[float]:
        return sorted(self.mine.get(domain, {}).values())


def customer_id(i: int) -> str:
    return f"fo-{i:07d}"


async def load_history(
    matcher_dsn: str, notifier_dsn: str, n: int, product: str, seller: str, domain: str
) -> None:
    """Each customer: one line of the recalled product, one of another product; one contact each."""
    start = datetime(2025, 1, 1, tzinfo=UTC)
    conn = await asyncpg.connect(matcher_dsn)
    try:
        for base in range(0, n, 100_000):
            rows = []
            for i in range(base, min(base + 100_000, n)):
                c = customer_id(i)
                for k, pid in enumerate((product, f"other-{i % 500:03d}")):
                    rows.append(
                        (
                            f"fl-{i:07d}-{k}",
                            f"fo-{i:07d}-{k}",
                            c,
                            pid,
                            "Kettle" if k == 0 else "Lamp",
                            *(None, None, None),
                            seller,
                            1,
                            0,
                            False,
                            Decimal("29.99"),
                            "EUR",
                            *(None, None),
                            start + timedelta(minutes=i % 500_000),
                            *(None, None, None, None),
                        )
                    )
            await conn.copy_records_to_table("purchase_lines", records=rows, columns=COLUMNS)
        await conn.execute("ANALYZE purchase_lines")
    finally:
        await conn.close()
    conn = await asyncpg.connect(notifier_dsn)
    try:
        await conn.copy_records_to_table(
            "contacts",
            records=[
                (
                    customer_id(i),
                    f"Customer {i}",
                    f"{customer_id(i)}@{domain}",
                    "de" if i % 3 else "en",
                )
                for i in range(n)
            ],
            columns=("customer_id", "name", "email", "locale"),
        )
        await conn.execute("ANALYZE contacts")
    finally:
        await conn.close()


async def create_recall(stack: Stack, product: str, seller: str, run: str) -> tuple[str, str]:
    """Listing on the catalog topic, a seller key, the recall as a draft: (recall id, key)."""
    prefix = stack.env["RECALL_ALERTS_TOPIC_PREFIX"]
    producer = create_client_producer(kafka_bootstrap(), "bench-fanout")
    await producer.start()
    try:
        listing = ev.ListingUpdated(product_id=product, title="Kettle", seller_ids=[seller])
        e = wrap(listing, source="/bench/catalog")
        await producer.send_and_wait(
            prefix + CATALOG_LISTINGS.name,
            e.data,
            key=listing.partition_key().encode(),
            headers=e.headers(),
        )
    finally:
        await producer.stop()
    stack.run_cli(SERVICE["recall-intake"], "register-seller", seller)
    key = stack.run_cli(
        SERVICE["recall-intake"], "issue-api-key", "--seller-id", seller, "--label", "bench",
        capture=True,
    ).splitlines()[-1]  # fmt: skip
    body = {
        "content": {
            "title": f"Kettle {run}",
            "hazard": "The lid opens while boiling: burns.",
            "severity": "high",
            "stop_using": "Stop using the kettle.",
            "remedies": [{"type": "refund_on_destruction"}],
        },
        "rules": [{"product_ids": [product]}],
    }
    async with httpx.AsyncClient(
        base_url=stack.url("recall-intake"), headers={"X-Api-Key": key}, timeout=10
    ) as intake:
        deadline = time.monotonic() + 60
        while True:  # 422 until intake has read the listing
            r = await intake.post(
                "/v1/recalls", json=body, headers={"Idempotency-Key": f"bench-{run}"}
            )
            if r.status_code == 201:
                return r.json()["recall_id"], key
            if time.monotonic() > deadline:
                raise RuntimeError(f"recall not created: {r.status_code} {r.text}")
            await asyncio.sleep(0.3)


class Clocks:
    """When each watched thing first reached its goal, in seconds after publication."""

    def __init__(self) -> None:
        self.t0 = 0.0
        self.wall0 = 0.0
        self.done: dict[str, float] = {}
        self.meter: CpuMeter | None = None
        self.cpu: dict[str, dict[str, float]] = {}  # goal -> CPU seconds spent until it
        self.counts: dict[str, int] = {"topic": 0, "rows": 0, "banner": 0, "email": 0}

    def start(self) -> None:
        self.t0, self.wall0 = time.perf_counter(), time.time()
        if self.meter is not None:
            self.meter.start()

    def mark(self, name: str) -> None:
        if name not in self.done and self.meter is not None:
            self.cpu[name] = self.meter.snapshot()
        self.done.setdefault(name, time.perf_counter() - self.t0)


async def watch_topic(clocks: Clocks, topic: str, n: int) -> None:
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap(), group_id=None)
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in range(ALERTS.partitions)]
        while True:
            clocks.counts["topic"] = sum((await consumer.end_offsets(parts)).values())
            if clocks.counts["topic"] >= n:
                return clocks.mark("topic")
            await asyncio.sleep(0.05)
    finally:
        await consumer.stop()


async def watch_rows(clocks: Clocks, dsn: str, recall_id: str, n: int) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        while True:
            clocks.counts["rows"] = await conn.fetchval(
                "SELECT count(*) FROM alerts WHERE recall_id = $1", recall_id
            )
            if clocks.counts["rows"] >= n:
                return clocks.mark("rows")
            await asyncio.sleep(0.25)
    finally:
        await conn.close()


async def watch_banners(clocks: Clocks, url: str, sample: list[str], recall_id: str) -> None:
    tokens = {c: issue_customer_token(c, JWT_SECRET) for c in sample}
    pending = set(sample)
    limits = httpx.Limits(max_connections=4)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as api:

        async def shows(c: str) -> bool:
            r = await api.get("/v1/me/banner", headers={"Authorization": f"Bearer {tokens[c]}"})
            r.raise_for_status()
            most = r.json()["most_severe"]
            return most is not None and most["recall_id"] == recall_id

        while pending:
            asked = sorted(pending)
            for c, seen in zip(asked, await asyncio.gather(*map(shows, asked)), strict=True):
                if seen:
                    pending.discard(c)
            clocks.counts["banner"] = len(sample) - len(pending)
            if pending:
                await asyncio.sleep(0.5)
    clocks.mark("banner")


async def watch_mail(clocks: Clocks, mail: MailCount, domain: str, n: int) -> None:
    while True:
        await asyncio.to_thread(mail.scan, (domain,))
        clocks.counts["email"] = mail.count(domain)
        if clocks.counts["email"] >= n:
            clocks.done["email"] = mail.times(domain)[-1] - clocks.wall0
            return
        await asyncio.sleep(1.0)


async def report_progress(clocks: Clocks, n: int, sample: int) -> None:
    while True:
        await asyncio.sleep(2.0)
        c = clocks.counts
        progress(
            f"  [{time.perf_counter() - clocks.t0:7.1f} s] on topic {c['topic']:,}/{n:,}  "
            f"rows {c['rows']:,}/{n:,}  banners {c['banner']}/{sample}  emails {c['email']:,}/{n:,}"
        )


def matcher_pass_seconds(log: Path, recall_id: str) -> float | None:
    for line in log.read_text(errors="replace").splitlines():
        if '"reconciled recall"' in line and recall_id in line:
            try:
                return float(json.loads(line)["seconds"])
            except (ValueError, KeyError):
                return None
    return None


async def copy_limit(dsn: str, recall_id: str) -> float:
    """The same rows customer-api wrote, COPYed into a table of the same shape (its indexes too)."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            f"SELECT {', '.join(ALERT_COLUMNS)} FROM alerts WHERE recall_id = $1", recall_id
        )
        await conn.execute("CREATE TABLE bench_copy_limit (LIKE alerts INCLUDING ALL)")
        records = [tuple(r) for r in rows]
        started = time.perf_counter()
        await conn.copy_records_to_table("bench_copy_limit", records=records, columns=ALERT_COLUMNS)
        return time.perf_counter() - started
    finally:
        await conn.close()


async def smtp_limit(message: bytes, n: int, connections: int, domain: str, port: int) -> float:
    """Plain aiosmtplib: n messages of the system's size over ``connections`` open connections."""
    clients = [aiosmtplib.SMTP(hostname=SMTP_HOST, port=port) for _ in range(connections)]
    await asyncio.gather(*(c.connect() for c in clients))
    left = iter(range(n))

    async def send(client: aiosmtplib.SMTP) -> None:
        for i in left:
            await client.sendmail("bench@recall-alerts.invalid", [f"p{i}@{domain}"], message)

    try:
        started = time.perf_counter()
        await asyncio.gather(*map(send, clients))
        return time.perf_counter() - started
    finally:
        for c in clients:
            await c.quit()


def system_message(mail: MailCount, domain: str) -> bytes:
    """One of the system's messages as sent (the sink's leading X-Sink-* header lines removed)."""
    name = next(iter(mail.mine[domain]))
    lines = (mail.new / name).read_bytes().splitlines(keepends=True)
    while lines and lines[0].startswith(b"X-Sink-"):
        lines.pop(0)
    return b"".join(lines)


async def run(args: argparse.Namespace) -> dict:
    n = args.customers
    run_id = uuid.uuid4().hex[:8]
    prefix = f"fanout-{run_id}."
    domain, plain_domain = f"{run_id}.fanout.test", f"plain.{run_id}.fanout.test"
    product, seller = f"kettle-{run_id}", f"seller-{run_id}"
    db_names = {svc.name: f"fanout_{run_id}_{svc.package}" for svc in SERVICES}
    # A sink of its own: a run adds N messages (and N more for the limit), which would slow every
    # mailbox search of tests sharing the local sink, and a shared sink's load would skew the run.
    sink_dir = tempfile.TemporaryDirectory(prefix="fanout-sink-")
    sink_proc, sink_port = start_sink(sink_dir.name)
    mail = MailCount(Path(sink_dir.name))
    urls = {name: await create_database(db) for name, db in db_names.items()}
    dsn = {k: u.replace("postgresql+asyncpg://", "postgresql://") for k, u in urls.items()}
    env = {
        **os.environ,
        "RECALL_ALERTS_ENV": "test",
        "RECALL_ALERTS_TOPIC_PREFIX": prefix,
        "RECALL_ALERTS_JWT_SECRET": JWT_SECRET,
        "RECALL_ALERTS_API_KEY_PEPPER": "bench-pepper-" + "p" * 32,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap(),
        "NOTIFIER_CUSTOMER_PORTAL_URL": f"http://127.0.0.1:{args.port_base + 5}",
        "NOTIFIER_SMTP_HOST": SMTP_HOST,
        "NOTIFIER_SMTP_PORT": str(sink_port),
        "NOTIFIER_SMTP_CONCURRENCY": str(args.smtp_connections),
        **{f"{svc.env_prefix}DATABASE_URL": urls[svc.name] for svc in SERVICES},
    }
    stack = Stack(
        env=env,
        ports={svc.name: args.port_base + i + 1 for i, svc in enumerate(SERVICES)},
        log_dir=ROOT / "test-artifacts" / f"fanout-{run_id}",
    )
    out: dict = {"customers": n, "run": run_id, "nproc": os.cpu_count()}
    tasks: list[asyncio.Task] = []
    try:
        progress(f"fanout {run_id}: migrating, creating topics")
        await asyncio.to_thread(stack.prepare)
        progress(f"loading {2 * n:,} order lines and {n:,} contacts")
        t = time.perf_counter()
        await load_history(dsn["purchase-matcher"], dsn["notifier"], n, product, seller, domain)
        out["load_s"] = round(time.perf_counter() - t, 1)
        progress(f"starting the five services on {args.port_base + 1}-{args.port_base + 5}")
        await asyncio.to_thread(stack.start)
        for svc in SERVICES:
            await wait_for_group(prefix + svc.name, within_s=60)
        recall_id, key = await create_recall(stack, product, seller, run_id)
        picked = random.Random(n).sample(range(n - 1), min(args.banner_sample, n) - 1)
        sample = sorted(customer_id(i) for i in [*picked, n - 1])
        clocks = Clocks()
        clocks.meter = CpuMeter({name: p.pid for name, p in stack.processes.items()})
        await asyncio.sleep(1.0)  # let the loading settle before the clock starts
        out["loadavg_before"] = [round(x, 2) for x in os.getloadavg()]
        progress(f"publishing recall {recall_id} to {n:,} customers")
        clocks.start()
        async with httpx.AsyncClient(base_url=stack.url("recall-intake"), timeout=30) as intake:
            r = await intake.post(f"/v1/recalls/{recall_id}/publish", headers={"X-Api-Key": key})
            if r.status_code != 200:
                raise RuntimeError(f"publish failed: {r.status_code} {r.text}")
        watchers = [
            watch_topic(clocks, prefix + ALERTS.name, n),
            watch_rows(clocks, dsn["customer-api"], recall_id, n),
            watch_banners(clocks, stack.url("customer-api"), sample, recall_id),
            watch_mail(clocks, mail, domain, n),
        ]
        tasks = [asyncio.create_task(w) for w in watchers]
        ticker = asyncio.create_task(report_progress(clocks, n, len(sample)))
        try:
            done, pending = await asyncio.wait(tasks, timeout=args.timeout)
            for task in done:
                task.result()  # a watcher's failure is the run's
            if pending:
                raise RuntimeError(f"not done within {args.timeout}s: {clocks.counts}")
        finally:
            ticker.cancel()
        out["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
        out["peak_rss_mb"] = {
            name: round(peak_rss_mb(p.pid), 1) for name, p in stack.processes.items()
        }
        times = mail.times(domain)
        out["matcher_pass_s"] = matcher_pass_seconds(
            stack.log_dir / "purchase-matcher.log", recall_id
        )
        await asyncio.to_thread(stack.stop)
        raised = await count_raised(prefix + ALERTS.name)
        if raised != n:
            raise RuntimeError(f"{raised} alert.raised.v1 on the topic, expected {n}")
        progress("limits: bare COPY of the same rows")
        copy_s = await copy_limit(dsn["customer-api"], recall_id)
        message = system_message(mail, domain)
        progress(f"limits: plain aiosmtplib, {n:,} messages of {len(message):,} bytes")
        smtp_s = await smtp_limit(message, n, args.smtp_connections, plain_domain, sink_port)
        await asyncio.to_thread(mail.scan, (domain, plain_domain))
        plain_stored = mail.count(plain_domain)
        if plain_stored != n:
            raise RuntimeError(f"{plain_stored} plain messages in the sink, expected {n}")
        d = {k: round(v, 2) for k, v in clocks.done.items()}
        email_rate = n / clocks.done["email"]
        plain_rate = n / smtp_s
        out.update(
            {
                "to_last_alert_on_topic_s": d["topic"],
                "to_last_customer_api_row_s": d["rows"],
                "to_last_sampled_banner_s": d["banner"],
                "banner_sample": len(sample),
                "to_last_email_s": d["email"],
                "first_email_s": round(times[0] - clocks.wall0, 2),
                "copy_limit_s": round(copy_s, 2),
                "plain_smtp_s": round(smtp_s, 2),
                "message_bytes": len(message),
                "smtp_connections": args.smtp_connections,
                "emails_per_s": round(email_rate),
                "emails_per_s_first_to_last": round((n - 1) / max(times[-1] - times[0], 1e-9)),
                "plain_smtp_per_s": round(plain_rate),
                "banner_vs_topic": round(clocks.done["banner"] / clocks.done["topic"], 2),
                "rows_vs_copy_limit": round(clocks.done["rows"] / copy_s, 1),
                "email_rate_vs_plain": round(email_rate / plain_rate, 2),
                "alerts_into_customer_api_per_s": round(n / clocks.done["rows"]),
                # CPU seconds from publication to each goal (see bench/cpu_meter.py), and per
                # 1,000 customers to the last banner: comparable across runs on a busy machine.
                "cpu_s_to": clocks.cpu,
                "cpu_ms_per_customer_to_banner": {
                    name: round(1000 * spent / n, 3)
                    for name, spent in clocks.cpu.get("banner", {}).items()
                },
                "busy_cores_to_banner": round(
                    clocks.cpu.get("banner", {}).get("machine", 0.0) / clocks.done["banner"], 2
                ),
            }
        )
        return out
    finally:
        for task in tasks:
            task.cancel()
        if stack.processes:
            await asyncio.to_thread(stack.stop)
        for db in db_names.values():
            await drop_database(db)
        await delete_topics(prefix)
        sink_proc.terminate()
        sink_proc.wait(timeout=10)
        sink_dir.cleanup()
        progress("cleaned up: databases, topics, the private sink")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--port-base", type=int, default=17000, help="services on base+1 .. base+5")
    ap.add_argument("--banner-sample", type=int, default=50)
    ap.add_argument(
        "--smtp-connections", type=int, default=4, help="the notifier's and plain aiosmtplib's"
    )
    ap.add_argument("--timeout", type=float, default=7200)
    args = ap.parse_args()
    print(json.dumps(asyncio.run(run(args))))


if __name__ == "__main__":
    main()
