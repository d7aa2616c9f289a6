"""Benchmark: the notifier's sender (notices table -> rendered notices -> pooled SMTP -> recorded as sent, with
their notification.sent.v1 outbox rows) against plain aiosmtplib sends of the same rendered messages, at the
same concurrency over the same number of connections, in the same run, to the same SMTP sink.

    .venv/bin/python bench/notifier_throughput.py [--notices 2000] [--concurrency 4] [--use-running-sink]

By default a private instance of the local SMTP sink (deploy/smtp/smtp_sink.py, aiosmtpd writing a Maildir)
is started on a free port with a throwaway Maildir, so the shared development sink is not filled with
thousands of messages; ``--use-running-sink`` sends to 127.0.0.1:1025 instead. The notices live in a
dedicated throwaway database (created, migrated, dropped). Each notice has its own alert, customer and
unique recipient address.

Timed, notifier side: claim (lease + 'sending' with the Message-ID) -> load alert and contact -> render
(en/de templates) -> SMTP over the pool -> record 'sent' + outbox event, until every notice is sent.
Timed, baseline: C aiosmtplib connections, each sending pre-rendered messages from a shared queue
(connections opened inside the timing on both sides). The run is split into interleaved rounds (baseline
chunk, then the same number of notices), so drift in the sink or in the machine's load hits both sides
alike; the ratio is of the totals. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import aiosmtplib
from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "shared" / "src"))
sys.path.insert(0, str(ROOT / "services" / "notifier" / "src"))

import notifier  # noqa: E402
from notifier.handlers import message_id_for, notice_id_for  # noqa: E402
from notifier.render import NoticeRenderer, outgoing  # noqa: E402
from notifier.sender import NoticeSender, SmtpTransport  # noqa: E402
from notifier.settings import Settings  # noqa: E402
from recall_shared import events as ev  # noqa: E402
from recall_shared.db import create_engine, create_session_factory  # noqa: E402
from recall_shared.metrics import Metrics  # noqa: E402
from recall_shared.migrations import upgrade  # noqa: E402
from recall_shared.outbox import Outbox  # noqa: E402
from recall_shared.testing import create_database, drop_database, unique_name  # noqa: E402

MIGRATIONS = Path(notifier.__file__).parent / "migrations"


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


def make_alert(i: int, run: str) -> ev.AlertState:
    return ev.AlertState(
        alert_id=str(uuid.uuid4()),
        alert_version=1,
        customer_id=f"bench-{run}-{i}",
        recall_id="rc-bench",
        recall_version=1,
        seller_id="seller-1",
        tier="possibly_affected" if i % 3 == 0 else "confirmed",
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
                tier="possibly_affected" if i % 3 == 0 else "confirmed",
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


async def seed(sessions, alerts: list[ev.AlertState], run: str) -> list[str]:  # type: ignore[no-untyped-def]
    contacts, alert_rows, notices = [], [], []
    for i, a in enumerate(alerts):
        contacts.append(
            {
                "customer_id": a.customer_id,
                "name": f"Customer {i}",
                "email": f"n-{run}-{i}@bench.example",
                "locale": "de" if i % 2 else "en",
            }
        )
        alert_rows.append(
            {
                "alert_id": a.alert_id,
                "customer_id": a.customer_id,
                "alert_version": 1,
                "status": "open",
                "state": json.dumps(a.model_dump(mode="json")),
            }
        )
        notices.append(
            {
                "notice_id": notice_id_for(a.alert_id, "initial", 1, a.customer_id),
                "alert_id": a.alert_id,
                "customer_id": a.customer_id,
            }
        )
    async with sessions() as session, session.begin():
        await session.execute(
            text(
                "INSERT INTO contacts (customer_id, name, email, locale, updated_at) "
                "VALUES (:customer_id, :name, :email, :locale, now())"
            ),
            contacts,
        )
        await session.execute(
            text(
                "INSERT INTO alerts (alert_id, customer_id, alert_version, status, state, updated_at) "
                "VALUES (:alert_id, :customer_id, :alert_version, :status, CAST(:state AS jsonb), now())"
            ),
            alert_rows,
        )
        await session.execute(
            text(
                "INSERT INTO notices (notice_id, alert_id, customer_id, recipient_customer_id, recipient_role, kind, "
                "alert_version, status, attempts, next_attempt_at, created_at) VALUES (:notice_id, :alert_id, :customer_id, "
                ":customer_id, 'purchaser', 'initial', 1, 'waiting_contact', 0, now(), now())"
            ),
            notices,
        )
    return [n["notice_id"] for n in notices]


async def baseline(
    settings: Settings, messages: list[bytes], recipients: list[str], concurrency: int
) -> float:
    queue: asyncio.Queue[tuple[bytes, str]] = asyncio.Queue()
    for m, r in zip(messages, recipients, strict=True):
        queue.put_nowait((m, r))
    sender = "recalls@recall-alerts.invalid"

    async def worker() -> None:
        smtp = aiosmtplib.SMTP(
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            start_tls=False,
            timeout=settings.smtp_timeout_s,
        )
        await smtp.connect()
        try:
            while not queue.empty():
                data, rcpt = queue.get_nowait()
                await smtp.sendmail(sender, [rcpt], data)
        finally:
            await smtp.quit()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--notices", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--use-running-sink",
        action="store_true",
        help="send to 127.0.0.1:1025 instead of a private sink",
    )
    args = parser.parse_args()
    n, c = args.notices, args.concurrency
    run = uuid.uuid4().hex[:8]

    tmp = tempfile.TemporaryDirectory(prefix="bench-sink-")
    sink = None
    port = 1025
    if not args.use_running_sink:
        sink, port = start_sink(str(Path(tmp.name) / "mail"))
    db = unique_name("bench_notifier")
    url = await create_database(db)
    try:
        await asyncio.to_thread(upgrade, MIGRATIONS, url)
        settings = Settings(
            database_url=url,
            environment="development",
            log_json=False,
            log_level="WARNING",
            smtp_port=port,
            smtp_concurrency=c,
            customer_portal_url="https://shop.example/account",
            send_lease_s=600,
        )
        engine = create_engine(settings)
        sessions = create_session_factory(engine)
        alerts = [make_alert(i, run) for i in range(n)]
        ids = await seed(sessions, alerts, run)

        # The same rendered messages for the baseline (its own unique recipients).
        renderer = NoticeRenderer(settings.customer_portal_url)
        base_msgs, base_rcpts = [], []
        for i, (a, nid) in enumerate(zip(alerts, ids, strict=True)):
            rcpt = f"b-{run}-{i}@bench.example"
            r = renderer.render(
                a,
                kind="initial",
                locale="de" if i % 2 else "en",
                recipient_name=f"Customer {i}",
                recipient_role="purchaser",
            )
            mail = outgoing(
                r,
                to=rcpt,
                name=f"Customer {i}",
                mail_from=settings.mail_from,
                message_id=message_id_for(nid),
                notice_id=nid,
            )
            base_msgs.append(mail.data)
            base_rcpts.append(rcpt)

        # Warm-up for both sides: the sink's first connections and code paths.
        await baseline(
            settings, base_msgs[:100], [f"w-{run}-{i}@bench.example" for i in range(100)], c
        )

        # Interleaved rounds (baseline chunk, notifier chunk, ...) so drift in the sink (its Maildir grows)
        # or in a shared machine's load hits both sides alike; totals are compared.
        transport = SmtpTransport(settings)
        sender = NoticeSender(
            settings=settings,
            session_factory=sessions,
            metrics=Metrics("notifier"),
            outbox=Outbox(source="/bench", service="notifier"),
            transport=transport,
        )
        base_s = notifier_s = 0.0
        per_round = []
        chunk = -(-n // args.rounds)
        for r in range(args.rounds):
            part = slice(r * chunk, min((r + 1) * chunk, n))
            async with (
                sessions() as session,
                session.begin(),
            ):  # untimed: this round's notices become due
                await session.execute(
                    text(
                        "UPDATE notices SET status = 'pending', next_attempt_at = now() "
                        "WHERE notice_id = ANY(:ids)"
                    ),
                    {"ids": ids[part]},
                )
            b = await baseline(settings, base_msgs[part], base_rcpts[part], c)
            started = time.perf_counter()
            await asyncio.gather(sender._drain(), sender._drain())
            t = time.perf_counter() - started
            base_s += b
            notifier_s += t
            k = part.stop - part.start
            per_round.append([round(k / t, 1), round(k / b, 1)])
        await transport.close()
        async with sessions() as session:
            sent = await session.scalar(text("SELECT count(*) FROM notices WHERE status = 'sent'"))
            events = await session.scalar(text("SELECT count(*) FROM outbox"))
        assert sent == n and events == n, (sent, events)
        await engine.dispose()
    finally:
        await drop_database(db)
        if sink is not None:
            sink.terminate()
            sink.wait(timeout=10)
        tmp.cleanup()

    base_rate = n / base_s
    rate = n / notifier_s
    print(
        json.dumps(
            {
                "benchmark": "notifier_throughput",
                "notices": n,
                "concurrency": c,
                "connections": transport.pool.connections_opened,
                "sink": "running sink :1025"
                if args.use_running_sink
                else "private smtp_sink.py instance",
                "notifier_notices_per_s": round(rate, 1),
                "baseline_msgs_per_s": round(base_rate, 1),
                "rounds_notifier_vs_baseline_per_s": per_round,
                "ratio": round(rate / base_rate, 3),
                "target_ratio": 0.9,
                "avg_message_bytes": round(sum(map(len, base_msgs)) / n),
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
