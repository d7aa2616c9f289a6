"""A poison record in the middle of a batch: only it goes to the dead-letter topic, every other
record of the batch is applied once, and the partition moves on. On alerts.v1 (its three
consumers) and on stop_sales.v1 (recall-intake's seller notices, consumer group ``.sellers``)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

import orjson
import pytest
from system import SERVICE_NAMES, System

from recall_shared import events as ev
from recall_shared.envelope import wrap
from recall_shared.kafka import create_client_producer, murmur2
from recall_shared.testing import eventually
from recall_shared.topics import ALERTS, STOP_SALES

pytestmark = [pytest.mark.reliability, pytest.mark.integration]

VALID = 400
ALERT_CONSUMERS = ("customer-api", "notifier", "refund-logistics")


def partition_of(key: str, partitions: int = ALERTS.partitions) -> int:
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


def alert(run: str, customer_id: str, *, alert_version: int = 1) -> ev.AlertRaised:
    return ev.AlertRaised(
        alert=ev.AlertState(
            alert_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{run}/{customer_id}")),
            alert_version=alert_version,
            customer_id=customer_id,
            recall_id=f"recall-{run}",
            recall_version=1,
            seller_id="seller",
            tier="confirmed",
            lines=[
                ev.AffectedLine(
                    order_id=f"o-{customer_id}"[:60],
                    line_id=f"l-{customer_id}"[:60],
                    product_id="kettle",
                    seller_id="seller",
                    purchased_at=datetime(2026, 1, 5, tzinfo=UTC),
                    units=1,
                    unit_price=Decimal("19.95"),
                    currency="EUR",
                )
            ],
            recall=ev.RecallContent(
                title="Kettle",
                hazard="Burns.",
                severity="high",
                stop_using="Stop using it.",
                remedies=[ev.Remedy(type="refund_on_destruction")],
            ),
        )
    )


def one_partition_customers(run: str, n: int, partition: int = 0) -> list[str]:
    out: list[str] = []
    i = 0
    while len(out) < n:
        customer = f"p{run}-{i:05d}"
        if partition_of(customer) == partition:
            out.append(customer)
        i += 1
    return out


async def test_a_poison_record_is_isolated_from_its_batch(system: System) -> None:
    """400 valid alerts on one partition of alerts.v1 and, in the middle, one whose
    alert_version is 2**31: a valid 64-bit integer, beyond the 32-bit version columns of the three
    alert consumers, so the contract refuses it at decode. Each consumer dead-letters that one alone
    (reason ``invalid``, at once: no handler attempt) and applies the 400 around it in batches.

    Old behaviour: the old contract accepted it, every handler failed on it, and it was retried
    five times before dead-lettering as ``failed`` (issue 20). A runner that dead-lettered, skipped
    or endlessly retried the batch around it (400 customers without their alert) fails here.
    (Bisection of a batch that fails in a handler: shared/tests/integration/test_consumer.py.)
    """
    run = uuid.uuid4().hex[:8]
    customers = one_partition_customers(run, VALID + 1)
    poison = alert(run, customers.pop())  # sent with alert_version 2**31 (see the docstring)
    events: list[ev.Event] = [alert(run, c) for c in customers]
    events.insert(VALID // 2, poison)
    letters_before = await system.dead_letters()
    failed_before = {
        name: await system.metric(name, "events_failed_total", topic=system.prefix + "alerts.v1")
        for name in ALERT_CONSUMERS
    }
    poison_id = await _publish_on_partition_zero(system, events, _alert_version_too_big)
    recall_id = f"recall-{run}"

    async def valid_applied() -> bool:
        counts = {
            "customer-api": await system.scalar(
                "customer-api", "SELECT count(*) FROM alerts WHERE recall_id = $1", recall_id
            ),
            "notifier": await system.scalar(
                "notifier",
                "SELECT count(*) FROM alerts WHERE state->>'recall_id' = $1",
                recall_id,
            ),
            "refund-logistics": await system.scalar(
                "refund-logistics", "SELECT count(*) FROM alerts WHERE recall_id = $1", recall_id
            ),
        }
        assert counts == dict.fromkeys(ALERT_CONSUMERS, VALID), counts
        return True

    async def one_letter_each() -> dict[str, list]:
        letters = await system.new_dead_letters(letters_before)
        counts = {name: len(recs) for name, recs in letters.items()}
        assert counts == {name: int(name in ALERT_CONSUMERS) for name in SERVICE_NAMES}, counts
        return letters

    await eventually(valid_applied, timeout=60, interval=0.5)
    letters = await eventually(one_letter_each, timeout=30, interval=0.5)
    for name in ALERT_CONSUMERS:
        (letter,) = letters[name]
        headers = {k: v.decode() for k, v in letter.headers}
        assert headers["ce_id"] == poison_id, headers
        assert headers["dlq_reason"] == "invalid", headers
        assert headers["dlq_attempts"] == "1", headers
        # Refused at decode: no handler ever ran on it, and no batch failed because of it.
        failed = await system.metric(name, "events_failed_total", topic=system.prefix + "alerts.v1")
        assert failed == failed_before[name], (name, failed)

    # Readiness reports the letter waiting for a redrive, and stays 200: the partition moved on.
    async def letter_reported() -> bool:
        status, body = await system.readyz("customer-api")
        pending = body["dead_letters"]
        assert status == 200 and isinstance(pending, dict), body
        assert pending[system.prefix + "customer-api"][system.prefix + "alerts.v1"] >= 1, body
        assert "redrive-dead-letters" in body["redrive"], body
        return True

    await eventually(letter_reported, timeout=20, interval=0.5)


def _alert_version_too_big(body: dict) -> None:
    body["alert"]["alert_version"] = 2**31  # beyond the 32-bit version columns


def _recall_version_too_big(body: dict) -> None:
    body["recall_version"] = 2**31  # a valid 64-bit integer; the contract's is 32-bit


async def test_a_poison_stop_sale_is_isolated_from_the_seller_notices_around_it(
    system: System,
) -> None:
    """200 stop-sales declared on one partition of stop_sales.v1 (each of its own recall, so each
    is a seller notice) and, in the middle, one whose recall_version is 2**31. recall-intake's
    ``.sellers`` consumer group dead-letters it alone (``invalid``, at decode) and the 200 around
    it become notices. No other service reads stop_sales.v1, so no other letter."""
    n = 200
    run = uuid.uuid4().hex[:8]
    seller_id = f"seller-poison-{run}"
    products: list[str] = []
    i = 0
    while len(products) < n + 1:
        product = f"p{run}-{i:05d}"
        if partition_of(product, STOP_SALES.partitions) == 0:
            products.append(product)
        i += 1
    events: list[ev.Event] = [
        ev.StopSaleDeclared(
            recall_id=str(uuid.uuid4()),
            recall_version=1,
            product_id=product,
            seller_id=seller_id,
            tier="confirmed",
            title="Kettle",
            severity="high",
            declared_at=datetime.now(UTC),
        )
        for product in products
    ]
    letters_before = await system.dead_letters()
    poison_id = await _publish_on_partition_zero(system, events, _recall_version_too_big, at=n // 2)

    async def notices_applied() -> bool:
        count = await system.scalar(
            "recall-intake", "SELECT count(*) FROM seller_notices WHERE seller_id = $1", seller_id
        )
        assert count == n, count
        return True

    async def one_letter() -> dict[str, list]:
        letters = await system.new_dead_letters(letters_before)
        counts = {name: len(recs) for name, recs in letters.items()}
        assert counts == {name: int(name == "recall-intake") for name in SERVICE_NAMES}, counts
        return letters

    await eventually(notices_applied, timeout=60, interval=0.5)
    (letter,) = (await eventually(one_letter, timeout=30, interval=0.5))["recall-intake"]
    headers = {k: v.decode() for k, v in letter.headers}
    assert headers["ce_id"] == poison_id, headers
    assert headers["dlq_reason"] == "invalid" and headers["dlq_attempts"] == "1", headers
    assert headers["dlq_consumer_group"].endswith("recall-intake.sellers"), headers


async def _publish_on_partition_zero(
    system: System, events: list[ev.Event], spoil: Callable[[dict], None], *, at: int = VALID // 2
) -> str:
    """Publish in order onto partition 0, where every key of ``events`` belongs, all sent before
    any is awaited (so they reach the consumers together), the one at ``at`` spoiled by ``spoil``
    (its JSON body); returns that poison one's id."""
    producer = create_client_producer(system.kafka.bootstrap, "reliability-poison")
    await producer.start()
    try:
        futures = []
        poison_id = ""
        for i, event in enumerate(events):
            env = wrap(event, source="/tests/reliability/poison")
            data = env.data
            if i == at:
                poison_id = env.id
                body = orjson.loads(data)
                spoil(body)
                data = orjson.dumps(body)
            futures.append(
                await producer.send(
                    system.prefix + event.topic,
                    data,
                    key=event.partition_key().encode(),
                    partition=0,
                    headers=env.headers(),
                )
            )
        for f in futures:
            await f
    finally:
        await producer.stop()
    return poison_id
