"""Benchmark: the notifier's fallback path, from ``alert.raised.v1`` on alerts.v1 to SMS accepted by
the SMS sandbox, against plain HTTP calls to the same sandbox with the same number in flight, in the
same run (issue 15).

    .venv/bin/python bench/notifier_sms_fallback.py [--notices 2000] [--concurrency 8] [--rounds 4]

Every customer has a phone and no email, so each notice takes the whole fallback path: consumed,
queued, claimed by the email sender and held (no address), its SMS queued by the channel policy in
the same transaction, claimed by the SMS sender, worded, POSTed to the sandbox (Twilio's Messages
API, the real adapter), recorded 'sent' with its outbox event. Timed: from the first alert of a
round being published to the last SMS recorded sent. The plain side POSTs the same form (To, From,
Body, StatusCallback) with ``--concurrency`` requests in flight, timed to the last answer. The
sandbox runs in its own process (``python -m notifier.sms_sandbox``); its status callbacks go to a
port nobody listens on, for both sides alike. Rounds alternate which side runs first. One JSON line,
with this process's CPU per notice on each side (``notifier_cpu_ms``, ``plain_cpu_ms``: the notifier
runs in it, idle during plain rounds), the sandbox's (``sandbox_cpu_ms``, per side), each round's
ratio and the machine's load average before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import asyncpg
import httpx
from aiokafka import AIOKafkaProducer
from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "shared" / "src"))
sys.path.insert(0, str(ROOT / "services" / "notifier" / "src"))

from cpu_meter import process_cpu_s  # noqa: E402

import notifier  # noqa: E402
from notifier.app import create_app  # noqa: E402
from notifier.settings import Settings  # noqa: E402
from notifier.sms import TwilioSms  # noqa: E402
from notifier.sms_sandbox import SandboxSms  # noqa: E402
from notifier.sms_sender import sms_text  # noqa: E402
from recall_shared import envelope  # noqa: E402
from recall_shared import events as ev  # noqa: E402
from recall_shared.db import asyncpg_dsn, create_engine, create_session_factory  # noqa: E402
from recall_shared.migrations import upgrade  # noqa: E402
from recall_shared.testing import (  # noqa: E402
    create_database,
    drop_database,
    own_topics,
    running_app,
    started_producer,
    unique_name,
)
from recall_shared.topics import ALERTS  # noqa: E402

MIGRATIONS = Path(notifier.__file__).parent / "migrations"
PORTAL = "https://shop.example/account"
FROM = "+15005550006"
ROUND_LIMIT_S = 300.0
NOBODY = "http://127.0.0.1:9/v1/webhooks/twilio"  # the discard port: callbacks fail at once


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_sandbox() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "notifier.sms_sandbox", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{url}/sandbox/messages?to=none", timeout=1).raise_for_status()
            return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the SMS sandbox did not start")


def make_alert(i: int, run: str) -> ev.AlertState:
    return ev.AlertState(
        alert_id=str(uuid.uuid4()),
        alert_version=1,
        customer_id=f"sms-{run}-{i}",
        recall_id=f"rc-{run}",
        recall_version=1,
        seller_id="seller-1",
        tier="confirmed",
        lines=[
            ev.AffectedLine(
                order_id=f"ord-{i}",
                line_id=f"line-{i}",
                product_id="prod-kettle",
                title="Acme kettle KX-1",
                seller_id="seller-1",
                purchased_at=datetime(2025, 3, 14, tzinfo=UTC),
                units=1,
                unit_price=Decimal("19.99"),
                currency="EUR",
            )
        ],
        recall=ev.RecallContent(
            title="Acme kettle KX-1",
            hazard="The base can overheat.",
            severity="high",
            stop_using="Unplug it.",
            remedies=[ev.Remedy(type="replacement")],
        ),
    )


def phone(i: int) -> str:
    return f"+4915{i:09d}"


async def notifier_round(
    settings: Settings,
    observer: asyncpg.Connection,
    alerts: list[ev.AlertState],
    producer: AIOKafkaProducer,
) -> tuple[float, dict[str, float]]:
    """Publish the round's alerts; time to the last of their SMS recorded sent, and when each
    stage of the hand-over first happened (the first email notice created by the consumer, first
    claimed by the email sender, the first SMS queued by its hold, first claimed). The observer
    polls on a connection of its own, one statement per poll (no transaction around it), so
    watching costs the notifier, which runs in this process, as little as it can."""
    ids = [a.alert_id for a in alerts]
    start = time.perf_counter()
    started_at = time.time()
    deadline = time.monotonic() + ROUND_LIMIT_S
    for a in alerts:
        env = envelope.wrap(ev.AlertRaised(alert=a), source="/bench")
        await producer.send(
            f"{settings.topic_prefix}{ALERTS.name}",
            value=env.data,
            key=a.customer_id.encode(),
            headers=env.headers(),
        )
    await producer.flush()
    while True:
        done = await observer.fetchval(
            "SELECT count(*) FROM notices WHERE channel = 'sms' AND status = 'sent' "
            "AND alert_id = ANY($1::text[])",
            ids,
        )
        if (done or 0) >= len(alerts):
            took = time.perf_counter() - start
            firsts = await observer.fetch(
                "SELECT channel, extract(epoch FROM min(created_at)) AS created, "
                "extract(epoch FROM min(sending_at)) AS claimed FROM notices "
                "WHERE alert_id = ANY($1::text[]) GROUP BY channel",
                ids,
            )
            stages = {
                f"{r['channel']}_{stage}": round(float(r[stage]) - started_at, 3)
                for r in firsts
                for stage in ("created", "claimed")
                if r[stage] is not None
            }
            return took, stages
        if time.monotonic() > deadline:
            raise RuntimeError(f"{done} of {len(alerts)} SMS sent in {ROUND_LIMIT_S} s")
        await asyncio.sleep(0.02)


async def plain_round(client: httpx.AsyncClient, bodies: list[str], concurrency: int) -> float:
    queue: asyncio.Queue[tuple[int, str]] = asyncio.Queue()
    for i, body in enumerate(bodies):
        queue.put_nowait((i, body))
    sid = SandboxSms.account_sid

    async def worker() -> None:
        while not queue.empty():
            i, body = queue.get_nowait()
            r = await client.post(
                f"/2010-04-01/Accounts/{sid}/Messages.json",
                data={"To": phone(i), "From": FROM, "Body": body, "StatusCallback": NOBODY},
            )
            r.raise_for_status()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - start


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--notices", type=int, default=2000, help="timed, over all rounds")
    parser.add_argument("--concurrency", type=int, default=8, help="SMS requests in flight")
    parser.add_argument("--rounds", type=int, default=4, help="timed rounds per side (even)")
    parser.add_argument("--warmup", type=int, default=200, help="untimed notices per side")
    args = parser.parse_args()
    run, c = uuid.uuid4().hex[:8], args.concurrency
    per_round = args.notices // args.rounds
    total = args.warmup + per_round * args.rounds
    sandbox, sandbox_url = start_sandbox()
    db = unique_name("bench_sms")
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
                customer_portal_url=PORTAL,
                sms_provider="twilio",
                twilio_base_url=sandbox_url,
                twilio_account_sid=SandboxSms.account_sid,
                twilio_auth_token=SandboxSms.auth_token,
                twilio_from=FROM,
                public_url="http://127.0.0.1:9",
                sms_concurrency=c,
                sms_batch_size=max(50, 4 * c),
                sender_poll_s=0.2,
                sms_poll_s=0.2,
                reminder_schedule_days=(),
            )
            alerts = [make_alert(i, run) for i in range(total)]
            engine = create_engine(settings)
            sessions = create_session_factory(engine)
            async with sessions() as s, s.begin():
                await s.execute(
                    text(
                        "INSERT INTO contacts (customer_id, name, phone, locale, sms_opt_out) "
                        "SELECT unnest(CAST(:ids AS text[])), 'Alex', "
                        "unnest(CAST(:phones AS text[])), 'en', false"
                    ),
                    {
                        "ids": [a.customer_id for a in alerts],
                        "phones": [phone(i) for i in range(total)],
                    },
                )
            sms = TwilioSms(
                account_sid=SandboxSms.account_sid,
                auth_token=SandboxSms.auth_token,
                from_=FROM,
                base_url=sandbox_url,
            )
            app = create_app(settings, sms=sms)
            auth = (SandboxSms.account_sid, SandboxSms.auth_token)
            limits = httpx.Limits(max_connections=c, max_keepalive_connections=c)
            observer = await asyncpg.connect(asyncpg_dsn(url))
            async with (
                running_app(app),
                started_producer(settings) as producer,
                httpx.AsyncClient(base_url=sandbox_url, auth=auth, limits=limits) as plain,
            ):
                bodies = [sms_text(a, "initial", PORTAL) for a in alerts]
                w = args.warmup
                await notifier_round(settings, observer, alerts[:w], producer)
                await plain_round(plain, bodies[:w], c)
                # The warm-up's status callbacks end before the first timed round (which, without
                # this, shared the sandbox with them: the notifier's, as round 1 runs it first).
                await asyncio.sleep(1.0)
                times: dict[str, float] = {"notifier": 0.0, "plain": 0.0}
                cpu: dict[str, float] = {"notifier": 0.0, "plain": 0.0}
                sandbox_cpu: dict[str, float] = {"notifier": 0.0, "plain": 0.0}
                rounds: list[dict[str, object]] = []
                load_before = os.getloadavg()[0]
                for r in range(args.rounds):
                    lo = w + r * per_round
                    chunk = slice(lo, lo + per_round)
                    sides = ["notifier", "plain"] if r % 2 == 0 else ["plain", "notifier"]
                    took: dict[str, float] = {}
                    for side in sides:
                        cpu_before = time.process_time()
                        sandbox_before = process_cpu_s(sandbox.pid)
                        if side == "notifier":
                            took[side], handover = await notifier_round(
                                settings, observer, alerts[chunk], producer
                            )
                        else:
                            took[side] = await plain_round(plain, bodies[chunk], c)
                        times[side] += took[side]
                        cpu[side] += time.process_time() - cpu_before
                        # Its status callbacks end within a second of the last answer (measured):
                        # counted with the side that caused them.
                        await asyncio.sleep(1.0)
                        sandbox_cpu[side] += process_cpu_s(sandbox.pid) - sandbox_before
                    rounds.append(
                        {
                            "first": sides[0],
                            "ratio": round(took["plain"] / took["notifier"], 3),
                            "first_s": handover,
                            "load": round(os.getloadavg()[0], 2),
                        }
                    )
            await observer.close()
            await engine.dispose()
            timed = per_round * args.rounds
            print(
                json.dumps(
                    {
                        "bench": "notifier_sms_fallback",
                        "notices": timed,
                        "concurrency": c,
                        "notifier_per_s": round(timed / times["notifier"], 1),
                        "plain_per_s": round(timed / times["plain"], 1),
                        "ratio": round(times["plain"] / times["notifier"], 3),
                        # This process's CPU per notice on each side (the notifier runs in it):
                        # steadier than the rates when other work shares the machine.
                        "notifier_cpu_ms": round(1000 * cpu["notifier"] / timed, 2),
                        "plain_cpu_ms": round(1000 * cpu["plain"] / timed, 2),
                        "sandbox_cpu_ms": {
                            k: round(1000 * v / timed, 2) for k, v in sandbox_cpu.items()
                        },
                        "per_round": rounds,
                        "load_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
                    }
                )
            )
    finally:
        sandbox.terminate()
        await drop_database(db)


if __name__ == "__main__":
    asyncio.run(main())
