"""Benchmark: the notifier end to end, from ``alert.raised.v1`` records on alerts.v1 to messages
in the SMTP sink, against plain aiosmtplib sending the same rendered messages over the same number
of connections to the same sink, in the same run.

    .venv/bin/python bench/notifier_throughput.py [--notices 5000] [--concurrency 4] [--rounds 6]

The whole notifier runs in this process (``create_app``: the consumer of alerts.v1, the notice
sender and its SMTP pool, the outbox relay of ``notification.sent.v1``) on a throwaway database and
its own topic prefix. A private instance of the local SMTP sink (deploy/smtp/smtp_sink.py, aiosmtpd
writing a Maildir) is started on a free port with a throwaway Maildir. Each alert has its own
customer, whose contact is stored beforehand (contacts arrive long before a recall).

Timed, notifier side: from the first ``alert.raised.v1`` of a round being published to the last of
its messages written by the sink (the newest file's mtime in the Maildir): consume, store the
alert, create the notice, claim, render, SMTP over the pool, record 'sent' with its outbox event.
Timed, plain side: from its start to its last message written, measured the same way; C persistent
aiosmtplib connections send pre-rendered messages from a shared queue. Both sides are warmed alike
(untimed rounds each: connections open, code paths and the sink warm), then the timed rounds
alternate which side runs first, so neither always gets the warmer sink (its Maildir grows) or the
quieter machine. The ratio is of the totals. Prints one JSON line, with the CPU per message of
each side (``cpu_ms_per_message``): this process (the notifier runs in it; the plain side's client
too), the sink, and the PostgreSQL backends of the bench's database (those open when a round starts:
the notifier's pooled connections), and the machine's load average per round.

``--start-at notices`` times the sender stage alone, in the same running service: the notices are
created beforehand (untimed, as waiting for a contact); a round starts by making its notices due
and waking the sender, as a consumer would.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TypeVar

import aiosmtplib
from cpu_meter import process_cpu_s
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "shared" / "src"))
sys.path.insert(0, str(ROOT / "services" / "notifier" / "src"))

import notifier  # noqa: E402
from notifier import handlers  # noqa: E402
from notifier.app import create_app  # noqa: E402
from notifier.handlers import message_id_for, notice_id_for  # noqa: E402
from notifier.render import NoticeRenderer, outgoing  # noqa: E402
from notifier.settings import Settings  # noqa: E402
from recall_shared import envelope  # noqa: E402
from recall_shared import events as ev  # noqa: E402
from recall_shared.db import create_engine, create_session_factory  # noqa: E402
from recall_shared.handlers import Delivery  # noqa: E402
from recall_shared.migrations import upgrade  # noqa: E402
from recall_shared.testing import (  # noqa: E402
    create_database,
    drop_database,
    eventually,
    own_topics,
    running_app,
    started_producer,
    unique_name,
)
from recall_shared.topics import ALERTS  # noqa: E402

MIGRATIONS = Path(notifier.__file__).parent / "migrations"
MAIL_FROM = "recalls@recall-alerts.invalid"
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_sink(maildir: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "deploy" / "smtp" / "smtp_sink.py"),
            "--port",
            str(port),
            "--http-port",
            "0",
            "--maildir",
            maildir,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the SMTP sink did not start")


class Sink:
    """What the sink has written: new files in its Maildir since the last round, and when."""

    def __init__(self, maildir: Path) -> None:
        self.new = maildir / "new"
        self.seen: set[str] = set()

    def _names(self) -> list[str]:
        try:
            return os.listdir(self.new)
        except FileNotFoundError:
            return []

    async def wait(self, count: int, limit_s: float) -> float:
        """Wait for ``count`` new messages; returns the wall-clock time the last was written.

        Polled by a cheap directory count: the time comes from the files, not from the poll."""
        deadline = time.monotonic() + limit_s
        while len(self._names()) - len(self.seen) < count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"fewer than {count} messages reached the sink")
            await asyncio.sleep(0.1)
        new = [name for name in self._names() if name not in self.seen]
        self.seen.update(new)
        return max((self.new / name).stat().st_mtime for name in new)


def make_alert(i: int, run: str) -> ev.AlertState:
    tier: ev.AlertTier = "possibly_affected" if i % 3 == 0 else "confirmed"
    return ev.AlertState(
        alert_id=str(uuid.uuid4()),
        alert_version=1,
        customer_id=f"bench-{run}-{i}",
        recall_id="rc-bench",
        recall_version=1,
        seller_id="seller-1",
        tier=tier,
        lines=[
            ev.AffectedLine(
                order_id=f"ord-{i}",
                line_id="l-1",
                product_id="prod-kettle",
                title="Acme kettle KX-1",
                gtin="00012345678905",
                model_number="KX-1",
                seller_id="seller-1",
                purchased_at=datetime(2025, 3, 14, 10, tzinfo=UTC),
                units=1 + i % 3,
                unit_price=Decimal("19.99"),
                currency="EUR",
                tier=tier,
                unknown_attributes=["lot"] if i % 3 == 0 else [],
            )
        ],
        recall=ev.RecallContent(
            title="Acme kettle KX-1",
            product_description="A 1.7 l electric kettle, white.",
            hazard="The base can overheat and cause burns. " * 5,
            severity="high",
            stop_using="Unplug the kettle and do not use it again.",
            remedies=[ev.Remedy(type="refund_on_destruction"), ev.Remedy(type="replacement")],
            images=["https://img.example/kettle.jpg"],
            consumer_contact="recalls@acme.example",
            texts={
                "de": ev.LocalizedText(
                    title="Acme Wasserkocher KX-1", hazard="Der Sockel kann überhitzen."
                )
            },
        ),
    )


def locale_of(i: int) -> str:
    return "de" if i % 2 else "en"


async def seed_contacts(
    sessions: async_sessionmaker[AsyncSession], alerts: list[ev.AlertState], run: str
) -> None:
    rows = [
        {
            "customer_id": a.customer_id,
            "name": f"Customer {i}",
            "email": f"n-{run}-{i}@bench.example",
            "locale": locale_of(i),
        }
        for i, a in enumerate(alerts)
    ]
    async with sessions() as session, session.begin():
        await session.execute(
            text(
                "INSERT INTO contacts (customer_id, name, email, locale, updated_at) "
                "VALUES (:customer_id, :name, :email, :locale, now())"
            ),
            rows,
        )


async def queue_waiting_notices(
    sessions: async_sessionmaker[AsyncSession], alerts: list[ev.AlertState]
) -> None:
    """The alerts stored and their notices queued (by the consumer's handler), held back as
    waiting in the same transaction, so the sender sees none of them yet."""
    async with sessions() as session, session.begin():
        await handlers.apply_alert_events(
            session, [Delivery(e, envelope.wrap(e, source="/bench")) for e in map(raised, alerts)]
        )
        await session.execute(text("UPDATE notices SET status = 'waiting_contact'"))


async def make_due(sessions: async_sessionmaker[AsyncSession], alerts: list[ev.AlertState]) -> None:
    async with sessions() as session, session.begin():
        await session.execute(
            text("UPDATE notices SET status = 'pending' WHERE alert_id = ANY(:ids)"),
            {"ids": [a.alert_id for a in alerts]},
        )
        await handlers.wake_sender(session)


def raised(alert: ev.AlertState) -> ev.AlertRaised:
    return ev.AlertRaised(alert=alert)


def plain_messages(settings: Settings, alerts: list[ev.AlertState], run: str) -> list[bytes]:
    """The same rendered notices, each to its own recipient, for the plain side."""
    renderer = NoticeRenderer(settings.customer_portal_url)
    out = []
    for i, a in enumerate(alerts):
        nid = notice_id_for(a.alert_id, "initial", 1, a.customer_id)
        rendered = renderer.render(
            a,
            kind="initial",
            locale=locale_of(i),
            recipient_name=f"Customer {i}",
            recipient_role="purchaser",
        )
        mail = outgoing(
            rendered,
            to=f"b-{run}-{i}@bench.example",
            name=f"Customer {i}",
            mail_from=settings.mail_from,
            message_id=message_id_for(nid),
            notice_id=nid,
        )
        out.append(mail.data)
    return out


async def backend_pids(sessions: async_sessionmaker[AsyncSession], db: str) -> list[int]:
    async with sessions() as session:
        rows = await session.execute(
            text("SELECT pid FROM pg_stat_activity WHERE datname = :db"), {"db": db}
        )
        return [int(pid) for (pid,) in rows]


class SideCpu:
    """CPU seconds per side: this process, the sink, the database's backends."""

    def __init__(self, sink_pid: int) -> None:
        self.sink_pid = sink_pid
        self.spent: dict[str, dict[str, float]] = {
            side: {"process": 0.0, "sink": 0.0, "postgres": 0.0} for side in ("notifier", "plain")
        }

    def now(self, pids: list[int]) -> dict[str, float]:
        return {
            "process": time.process_time(),
            "sink": process_cpu_s(self.sink_pid),
            "postgres": sum(process_cpu_s(p) for p in pids),
        }

    def add(self, side: str, before: dict[str, float], after: dict[str, float]) -> None:
        for k in before:
            self.spent[side][k] += after[k] - before[k]

    def per_message_ms(self, n: int) -> dict[str, dict[str, float]]:
        return {
            side: {k: round(1000 * v / n, 2) for k, v in parts.items()}
            for side, parts in self.spent.items()
        }


async def _outbox_empty(session: AsyncSession) -> bool:
    return not await session.scalar(text("SELECT count(*) FROM outbox"))


class Plain:
    """C persistent aiosmtplib connections sending from one shared queue: the limit."""

    def __init__(self, settings: Settings, connections: int) -> None:
        self.settings = settings
        self.smtps = [
            aiosmtplib.SMTP(
                hostname=settings.smtp_host,
                port=settings.smtp_port,
                start_tls=False,
                timeout=settings.smtp_timeout_s,
            )
            for _ in range(connections)
        ]

    async def open(self) -> None:
        await asyncio.gather(*(s.connect() for s in self.smtps))

    async def send(self, messages: list[tuple[str, bytes]]) -> None:
        queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
        for m in messages:
            queue.put_nowait(m)

        async def worker(smtp: aiosmtplib.SMTP) -> None:
            while not queue.empty():
                rcpt, data = queue.get_nowait()
                await smtp.sendmail(MAIL_FROM, [rcpt], data)

        await asyncio.gather(*(worker(s) for s in self.smtps))

    async def close(self) -> None:
        await asyncio.gather(*(s.quit() for s in self.smtps), return_exceptions=True)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--notices", type=int, default=5000, help="timed, over all rounds")
    parser.add_argument("--concurrency", type=int, default=4, help="SMTP connections, both sides")
    parser.add_argument("--rounds", type=int, default=6, help="timed rounds per side (even)")
    parser.add_argument("--warmup", type=int, default=300, help="untimed messages per side")
    parser.add_argument("--timeout", type=float, default=600.0, help="per round")
    parser.add_argument(
        "--start-at",
        choices=["alerts", "notices"],
        default="alerts",
        help="alerts: from alert.raised.v1 on alerts.v1; notices: the sender stage alone",
    )
    args = parser.parse_args()
    n, c, w = args.notices, args.concurrency, args.warmup
    run = uuid.uuid4().hex[:8]

    tmp = tempfile.TemporaryDirectory(prefix="bench-sink-")
    maildir = Path(tmp.name) / "mail"
    sink_proc, port = start_sink(str(maildir))
    sink = Sink(maildir)
    db = unique_name("bench_notifier")
    url = await create_database(db)
    try:
        await asyncio.to_thread(upgrade, MIGRATIONS, url)
        async with own_topics() as prefix:
            settings = Settings(
                database_url=url,
                topic_prefix=prefix,
                environment="development",
                log_json=False,
                log_level="WARNING",
                smtp_port=port,
                smtp_concurrency=c,
                customer_portal_url="https://shop.example/account",
                reminder_poll_s=3600,
            )
            alerts = [make_alert(i, run) for i in range(w + n)]
            engine = create_engine(settings)
            sessions = create_session_factory(engine)
            await seed_contacts(sessions, alerts, run)
            plain_msgs = plain_messages(settings, alerts, run)
            plain_rcpts = [f"b-{run}-{i}@bench.example" for i in range(len(alerts))]
            topic = ALERTS.physical(prefix)
            records = []
            for a in alerts:  # built untimed: the records as the matcher put them on alerts.v1
                event = ev.AlertRaised(alert=a)
                env = envelope.wrap(event, source="/bench/matcher")
                records.append((event.partition_key().encode(), env.data, env.headers()))

            app = create_app(settings)
            async with running_app(app), started_producer(settings) as producer:
                bulk_s = None
                if args.start_at == "notices":
                    bulk_started = time.perf_counter()
                    await queue_waiting_notices(sessions, alerts)
                    bulk_s = time.perf_counter() - bulk_started

                async def system(part: slice) -> tuple[float, float]:
                    started = time.time()
                    if args.start_at == "notices":
                        await make_due(sessions, alerts[part])
                    else:
                        for key, value, headers in records[part]:
                            await producer.send(topic, value=value, key=key, headers=headers)
                        await producer.flush()
                    last = await sink.wait(part.stop - part.start, args.timeout)
                    async with sessions() as session:
                        created = await session.scalar(
                            text(
                                "SELECT extract(epoch FROM max(created_at)) FROM notices "
                                "WHERE alert_id = ANY(:ids)"
                            ),
                            {"ids": [a.alert_id for a in alerts[part]]},
                        )
                        # Untimed: the relay's last notification.sent.v1 rows reach Kafka before
                        # the next round, so none of this round's work runs into the plain side's.
                        await eventually(
                            lambda: _outbox_empty(session), timeout=args.timeout, interval=0.05
                        )
                    return last - started, float(created) - started

                async def plain_side(part: slice) -> float:
                    started = time.time()
                    await plain.send(list(zip(plain_rcpts[part], plain_msgs[part], strict=True)))
                    return await sink.wait(part.stop - part.start, args.timeout) - started

                plain = Plain(settings, c)
                await plain.open()
                # Warm-up, untimed and alike: the consumer group joins, connections open, code paths
                # and the sink warm up.
                await system(slice(0, w // 2))
                await plain_side(slice(0, w // 2))
                await system(slice(w // 2, w))
                await plain_side(slice(w // 2, w))

                system_s = plain_s = 0.0
                per_round = []
                cpu = SideCpu(sink_proc.pid)
                load_before = os.getloadavg()[0]

                async def measured(side: str, run: Awaitable[T]) -> T:
                    pids = await backend_pids(sessions, db)
                    before = cpu.now(pids)
                    result = await run
                    cpu.add(side, before, cpu.now(pids))
                    return result

                chunk = -(-n // args.rounds)
                for r in range(args.rounds):
                    part = slice(w + r * chunk, w + min((r + 1) * chunk, n))
                    k = part.stop - part.start
                    if r % 2 == 0:
                        p = await measured("plain", plain_side(part))
                        s, notices = await measured("notifier", system(part))
                    else:
                        s, notices = await measured("notifier", system(part))
                        p = await measured("plain", plain_side(part))
                    system_s += s
                    plain_s += p
                    per_round.append(
                        {
                            "first": "plain" if r % 2 == 0 else "notifier",
                            "notifier_per_s": round(k / s, 1),
                            "plain_per_s": round(k / p, 1),
                            "last_notice_created_s": round(notices, 2)
                            if args.start_at == "alerts"
                            else None,
                            "notifier_s": round(s, 2),
                            "ratio": round(p / s, 3),
                            "load": round(os.getloadavg()[0], 2),
                        }
                    )
                await plain.close()
                connections = app.state.sender.transport.pool.connections_opened
                events = app.state.runtime.relay.published_total
            async with sessions() as session:
                sent = await session.scalar(
                    text("SELECT count(*) FROM notices WHERE status = 'sent'")
                )
            await engine.dispose()
            assert sent == n + w and events == n + w, (sent, events)
    finally:
        await drop_database(db)
        sink_proc.terminate()
        sink_proc.wait(timeout=10)
        tmp.cleanup()

    rate, plain_rate = n / system_s, n / plain_s
    print(
        json.dumps(
            {
                "benchmark": "notifier_throughput",
                "from": "alert.raised.v1 on alerts.v1 -> message in the sink"
                if args.start_at == "alerts"
                else "notice due -> message in the sink (the sender stage alone)",
                "notices": n,
                "rounds": args.rounds,
                "concurrency": c,
                "smtp_connections_opened": connections,
                "notifier_emails_per_s": round(rate, 1),
                "plain_aiosmtplib_per_s": round(plain_rate, 1),
                "ratio": round(rate / plain_rate, 3),
                "target_ratio": 0.9,
                "per_round": per_round,
                "cpu_ms_per_message": cpu.per_message_ms(n),
                "load_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
                # The alert -> notice step in bulk (handle_many over every alert in one
                # transaction, parsing excluded): what the batched consumer can feed the sender.
                "bulk_alert_to_notice_per_s": round((n + w) / bulk_s) if bulk_s else None,
                "avg_message_bytes": round(sum(map(len, plain_msgs)) / len(plain_msgs)),
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
