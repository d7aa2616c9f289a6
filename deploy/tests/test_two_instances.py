"""Two instances of every service on a three-broker cluster, their consumer groups on the KIP-848
consumer protocol: during a recall's fan-out one broker and one instance of each service are killed
(SIGKILL), and still every affected customer gets
exactly one alert and one notice (one Message-ID; an in-doubt re-send repeats the same one), and
nobody else gets any. Meanwhile 12 of them ask for a refund on proof of destruction through
either instance (a client falls back to the other when one is gone); b's refund-logistics is
started again and killed once more a second after it wrote its first refund intent (before or
while it pays it): each case is refunded, and paid exactly once at the payment provider (the
sandbox over HTTP, shared by both instances, so a second payment from either would show).
2.5-5 min here (on a machine busy with other test runs).

Marked two_instances and left out of `make test` (three JVMs and ten service processes on two
cores): `make test-two-instances` runs it."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import re
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from PIL import Image

from recall_shared import events as ev
from recall_shared.auth import issue_customer_token
from recall_shared.envelope import wrap
from recall_shared.kafka import create_client_producer
from recall_shared.testing import create_database, drop_database, eventually, read_to_end

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "deploy"))

from devstack import SERVICES, Stack  # noqa: E402
from kafka_cluster import Cluster  # noqa: E402

pytestmark = [pytest.mark.two_instances, pytest.mark.e2e, pytest.mark.integration]

SMTP_VIEWER = "http://127.0.0.1:8025"
CUSTOMERS = 120  # 90 of them bought the recalled product
PORTS_A, PORTS_B = 18300, 18310  # the services on 18301-18305 and 18311-18315
REFUNDERS = 12  # affected customers who ask for a refund on proof of destruction
JWT_SECRET = "two-instances-jwt-" + "s" * 40
PAYMENTS_PORT = 18391  # the payment sandbox both refund-logistics instances pay through
PAYMENTS_KEY = "two-instances-payments-" + "k" * 24


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cluster, Stack, Stack]]:
    work = tmp_path_factory.mktemp("two-instances")
    cluster = Cluster(work / "kafka")
    cluster("start")
    run = uuid.uuid4().hex[:8]
    db_names = {svc.name: f"two_{run}_{svc.package}" for svc in SERVICES}
    stacks: list[Stack] = []
    payments = _start_payments(work / "payments.log")
    try:
        urls = {name: asyncio.run(create_database(db)) for name, db in db_names.items()}
        env = {
            "RECALL_ALERTS_ENV": "test",
            "RECALL_ALERTS_TOPIC_PREFIX": f"two-{run}.",
            "KAFKA_BOOTSTRAP_SERVERS": cluster("bootstrap"),
            "RECALL_ALERTS_TOPIC_REPLICATION_FACTOR": "3",
            "RECALL_ALERTS_TOPIC_MIN_INSYNC_REPLICAS": "2",
            # Incremental rebalances (KIP-848, docs/decisions/0013): the surviving instance goes
            # on applying its partitions while the killed one's move to it.
            "KAFKA_CONSUMER_PROTOCOL": "consumer",
            "NOTIFIER_CUSTOMER_PORTAL_URL": f"http://127.0.0.1:{PORTS_A + 5}",
            "NOTIFIER_SENDER_POLL_S": "0.5",
            # The notices the killed instance had claimed (a lease, in batches) go out again once
            # the lease ends: 300 s by default, short here.
            "NOTIFIER_SEND_LEASE_S": "15",
            "RECALL_ALERTS_JWT_SECRET": JWT_SECRET,
            # One payment provider for both instances (the sandbox over HTTP, transient 503s
            # included), so a refund paid twice, by either, is seen; a refund intent the killed
            # instance had claimed is settled by the other once its lease ends.
            "REFUND_LOGISTICS_PAYMENT_PROVIDER": "http",
            "REFUND_LOGISTICS_PAYMENT_BASE_URL": f"http://127.0.0.1:{PAYMENTS_PORT}",
            "REFUND_LOGISTICS_PAYMENT_API_KEY": PAYMENTS_KEY,
            "REFUND_LOGISTICS_REFUND_LEASE_S": "10",
            **{f"{svc.env_prefix}DATABASE_URL": urls[svc.name] for svc in SERVICES},
        }
        env = {**os.environ, **env}
        for base, name in ((PORTS_A, "a"), (PORTS_B, "b")):
            stacks.append(
                Stack(
                    env=env,
                    ports={svc.name: base + i + 1 for i, svc in enumerate(SERVICES)},
                    log_dir=ROOT / "test-artifacts" / f"two-{run}-{name}",
                )
            )
        stacks[0].prepare()
        for stack in stacks:
            stack.start(timeout=240)
        yield cluster, stacks[0], stacks[1]
    finally:
        for stack in stacks:
            stack.stop()
        cluster("stop")
        payments.terminate()
        payments.wait(timeout=20)
        for db in db_names.values():
            asyncio.run(drop_database(db))


def _start_payments(log: Path) -> subprocess.Popen:
    """The payment sandbox (refund_logistics.sandbox) as its own process; waits until it answers."""
    command = [sys.executable, "-m", "refund_logistics.sandbox", "--port", str(PAYMENTS_PORT)]
    command += ["--latency-ms", "2000", "--jitter-ms", "0"]  # a payment takes 2 s
    command += ["--failure-rate", "0.05", "--seed", "18"]
    proc = subprocess.Popen(
        [*command, "--api-key", PAYMENTS_KEY],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{PAYMENTS_PORT}/healthz", timeout=2).is_success:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"the payment sandbox did not start; see {log}")


async def _publish(stack: Stack, events: list[ev.Event]) -> None:
    producer = create_client_producer(stack.env["KAFKA_BOOTSTRAP_SERVERS"], "two-upstream")
    await producer.start()
    try:
        for event in events:
            env = wrap(event, source="/tests/upstream")
            await producer.send_and_wait(
                stack.env["RECALL_ALERTS_TOPIC_PREFIX"] + event.topic,
                env.data,
                key=event.partition_key().encode(),
                headers=env.headers(),
            )
    finally:
        await producer.stop()


async def _mails(domain: str) -> dict[str, set[str]]:
    """Per recipient of the domain: the Message-IDs of the recall notices it got (not the refund
    confirmations the refunders get as well)."""
    by_rcpt: dict[str, set[str]] = defaultdict(set)
    async with httpx.AsyncClient(base_url=SMTP_VIEWER, timeout=10) as sink:
        listed = (await sink.get("/messages", params={"rcpt": domain})).json()
        for m in listed:
            raw = (await sink.get(f"/messages/{m['id']}")).text
            if not re.search(r"^Subject: Product safety recall: ", raw, re.MULTILINE):
                continue
            found = re.search(r"^Message-ID:\s*(\S+)", raw, re.MULTILINE | re.IGNORECASE)
            for rcpt in m["rcpt_to"]:
                by_rcpt[rcpt].add(found.group(1) if found else f"(none: {m['id']})")
    return by_rcpt


@pytest.mark.timeout(900)
async def test_a_fan_out_survives_a_lost_broker_and_a_lost_instance_of_each_service(
    system: tuple[Cluster, Stack, Stack],
) -> None:
    cluster, a, b = system
    run = uuid.uuid4().hex[:8]
    domain = f"@{run}.fanout.test"
    seller, product, other = f"seller-{run}", f"heater-{run}", f"fan-{run}"
    a.run_cli(SERVICES[0], "register-seller", seller)
    key = a.run_cli(SERVICES[0], "issue-api-key", "--seller-id", seller, capture=True)
    key = key.splitlines()[-1]
    placed = datetime.now(UTC) - timedelta(days=3)
    upstream: list[ev.Event] = [
        ev.ListingUpdated(product_id=product, title="Heater", seller_ids=[seller]),
        ev.ListingUpdated(product_id=other, title="Fan", seller_ids=[seller]),
    ]
    customers = [f"c{i}-{run}" for i in range(CUSTOMERS)]
    for i, customer in enumerate(customers):
        upstream.append(
            ev.CustomerUpdated(customer_id=customer, name=customer, email=customer + domain)
        )
        upstream.append(
            ev.OrderPlaced(
                order_id=f"o{i}-{run}",
                customer_id=customer,
                placed_at=placed,
                lines=[
                    ev.OrderLine(
                        line_id=f"l{i}-{run}",
                        product_id=product if i % 4 else other,  # every fourth: not affected
                        title="x",
                        seller_id=seller,
                        quantity=1,
                        unit_price=Decimal("10.00"),
                        currency="EUR",
                    )
                ],
            )
        )
    affected = {c + domain for i, c in enumerate(customers) if i % 4}
    await _publish(a, upstream)

    body = {
        "content": {
            "title": f"Heater {run}",
            "hazard": "Overheats.",
            "severity": "high",
            "stop_using": "Unplug it.",
            "remedies": [{"type": "refund_on_destruction"}],
        },
        "rules": [{"product_ids": [product]}],
        "logistics_enrolled": True,  # refund-logistics pays; a case is not referred to the seller
    }
    async with httpx.AsyncClient(
        base_url=a.url("recall-intake"), headers={"X-Api-Key": key}, timeout=20
    ) as intake:

        async def create() -> httpx.Response | None:
            r = await intake.post("/v1/recalls", json=body, headers={"Idempotency-Key": run})
            return r if r.status_code == 201 else None

        created = await eventually(create, timeout=60)
        assert created is not None
        recall = created.json()
        published = await intake.post(f"/v1/recalls/{recall['recall_id']}/publish")
        assert published.status_code == 200, published.text

    # Some buyers ask for a refund while the fan-out runs, half of them through instance b; the
    # photos of b's half are uploaded once via_b is set, the others' once via_a is (below).
    refunders = [c for i, c in enumerate(customers) if i % 4][:REFUNDERS]
    via_a, via_b = asyncio.Event(), asyncio.Event()
    refunding = asyncio.gather(
        *(
            _refund(c, (b, a), run, via_b) if n % 2 else _refund(c, (a, b), run, via_a)
            for n, c in enumerate(refunders)
        )
    )
    # Mid fan-out: the first notices are out. (Here the notices then go out within a second or two,
    # so the kill lands in the sending; notices the killed notifier had claimed go out again when
    # their lease ends, with the same Message-ID.)
    await eventually(lambda: _some_mail(domain), timeout=120, interval=0.2)
    for proc in b.processes.values():
        proc.kill()
    cluster("kill", "2")

    # Refunds under a kill too: b's refund-logistics comes back, takes its half of the photos, and
    # is killed a second after it wrote its first refund intent: before or while it pays it (the
    # sandbox answers after 2 s). a pays those intents once their lease ends, under the same
    # idempotency key: a payment b had made is answered again, not made twice.
    await asyncio.to_thread(b.restart_service, "refund-logistics")
    via_b.set()
    await eventually(lambda: _pending_refunds(a), timeout=120, interval=0.05)
    await asyncio.sleep(1.0)  # usually the payment is under way by now (or b dies just before it)
    b.processes["refund-logistics"].kill()
    via_a.set()

    async def everyone_noticed() -> bool:
        return (await _mails(domain)).keys() >= affected

    await eventually(everyone_noticed, timeout=240, interval=2)
    await asyncio.sleep(10)  # a duplicate would come now: in-doubt re-sends, redeliveries
    mails = await _mails(domain)
    assert mails.keys() == affected, "only the buyers of the recalled product"
    assert {r: len(ids) for r, ids in mails.items() if len(ids) != 1} == {}

    topic = a.env["RECALL_ALERTS_TOPIC_PREFIX"] + "alerts.v1"
    records = await read_to_end(topic, bootstrap=a.env["KAFKA_BOOTSTRAP_SERVERS"], timeout=30)
    raised: dict[str, set[str]] = defaultdict(set)
    for record in records:
        ce_type = dict(record.headers).get("ce_type", b"").decode()
        if ce_type == "alert.raised.v1":
            raised[record.key.decode()].add(dict(record.headers).get("ce_subject", b"").decode())
    assert {k + domain for k in raised} == affected
    assert {k: ids for k, ids in raised.items() if len(ids) != 1} == {}

    # Refunds once: every refunder's case is refunded, and paid once at the provider.
    cases = dict(zip(refunders, await refunding, strict=True))
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{PAYMENTS_PORT}", timeout=10) as pay:

        async def all_paid() -> list[dict] | None:
            paid = (await pay.get("/v1/refunds")).json()["data"]
            return paid if {r["reference"] for r in paid} >= set(cases.values()) else None

        paid = await eventually(all_paid, timeout=120, interval=1)
        await asyncio.sleep(5)  # a second payment (a lease taken over too early) would come now
        paid = (await pay.get("/v1/refunds")).json()["data"]
        stats = (await pay.get("/_sandbox/stats")).json()
    per_case = {ref: [r for r in paid if r["reference"] == ref] for ref in cases.values()}
    assert {ref: len(rs) for ref, rs in per_case.items() if len(rs) != 1} == {}
    assert len(paid) == stats["refunds"] == REFUNDERS, "nothing but these refunds was paid"
    assert {Decimal(r["amount"]) for r in paid} == {Decimal("10.00")}
    async with httpx.AsyncClient(base_url=a.url("customer-api"), timeout=10) as api:
        for customer in refunders:

            async def refunded(customer: str = customer) -> bool:
                r = await api.get("/v1/me/alerts", headers=_bearer(customer))
                (alert,) = r.json()["items"]
                remedy = await api.get(
                    f"/v1/me/alerts/{alert['alert_id']}/remedy", headers=_bearer(customer)
                )
                return remedy.json()["state"] == "refunded"

            await eventually(refunded, timeout=60, interval=0.5)


def _bearer(customer: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_customer_token(customer, JWT_SECRET)}"}


def _photo(seed: str) -> bytes:
    """A photo of the destroyed heater that decodes, unlike any other customer's (refund-logistics
    holds a photo reused across cases for review)."""
    noise = hashlib.shake_256(seed.encode()).digest(16 * 12)
    image = Image.frombytes("L", (16, 12), noise).resize((320, 240), Image.Resampling.NEAREST)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


async def _call(
    stacks: tuple[Stack, ...], service: str, method: str, path: str, **kwargs: Any
) -> httpx.Response:
    """The request to the first instance that answers, as a load balancer in front of both would
    send it (the instance b is killed during the test). Every request here may be repeated."""
    for stack in stacks:
        try:
            async with httpx.AsyncClient(base_url=stack.url(service), timeout=20) as client:
                return await client.request(method, path, **kwargs)
        except httpx.TransportError:
            continue  # that instance is gone (or went mid-request): the next one
    raise AssertionError(f"no instance of {service} answered {method} {path}")


async def _refund(customer: str, stacks: tuple[Stack, ...], run: str, go: asyncio.Event) -> str:
    """The customer asks for a refund on proof of destruction and, once ``go`` is set, uploads the
    photo, through ``stacks`` in order of preference; returns the case id."""
    auth = _bearer(customer)

    async def alert_id() -> str | None:
        items = (await _call(stacks, "customer-api", "GET", "/v1/me/alerts", headers=auth)).json()
        return items["items"][0]["alert_id"] if items.get("items") else None

    alert = await eventually(alert_id, timeout=120, interval=0.5)
    remedy_path = f"/v1/me/alerts/{alert}/remedy"

    async def chosen() -> bool:
        r = await _call(
            stacks,
            "customer-api",
            "POST",
            remedy_path,
            json={"remedy": "refund_on_destruction"},
            headers={**auth, "Idempotency-Key": f"remedy-{customer}"},
        )
        # 409: not known there yet; 503: its database or Kafka briefly away (the lost broker)
        assert r.status_code in (202, 409, 503), r.text
        return r.status_code == 202

    await eventually(chosen, timeout=60, interval=0.5)

    async def case_opened() -> str | None:
        r = await _call(stacks, "customer-api", "GET", remedy_path, headers=auth)
        return r.json().get("case_id") if r.status_code == 200 else None

    case_id = await eventually(case_opened, timeout=120, interval=0.5)
    await go.wait()

    async def proof_taken() -> bool:
        r = await _call(
            stacks,
            "refund-logistics",
            "POST",
            f"/v1/cases/{case_id}/proof",
            content=_photo(f"{run}-{customer}"),
            headers={**auth, "Content-Type": "image/png"},
        )
        assert r.status_code in (200, 202, 404, 503), r.text  # 404: the case not read there yet
        return r.status_code in (200, 202)

    await eventually(proof_taken, timeout=120, interval=0.5)
    return case_id


async def _pending_refunds(stack: Stack) -> int:
    """Refund intents written and not yet paid (refund-logistics' database, shared by both)."""
    url = stack.env["REFUND_LOGISTICS_DATABASE_URL"]
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        return int(await conn.fetchval("SELECT count(*) FROM refunds WHERE status = 'pending'"))
    finally:
        await conn.close()


async def _some_mail(domain: str) -> bool:
    async with httpx.AsyncClient(base_url=SMTP_VIEWER, timeout=10) as sink:
        return len((await sink.get("/messages", params={"rcpt": domain})).json()) >= 3
