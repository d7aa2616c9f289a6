"""Helpers for the project's tests: throwaway databases, topic prefixes, reading topics, waiting."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from fastapi import FastAPI

from recall_shared import events as ev
from recall_shared.envelope import Envelope, read_headers
from recall_shared.kafka import create_producer, create_topics
from recall_shared.migrations import upgrade
from recall_shared.settings import ServiceSettings

T = TypeVar("T")
S = TypeVar("S", bound=ServiceSettings)

ADMIN_DSN_ENV = "RECALL_ALERTS_PG_ADMIN_DSN"
DEFAULT_ADMIN_DSN = "postgresql://recall_alerts:recall_alerts@127.0.0.1:5432/postgres"


def admin_dsn() -> str:
    return os.environ.get(ADMIN_DSN_ENV, DEFAULT_ADMIN_DSN)


def kafka_bootstrap() -> str:
    return os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")


def unique_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


async def create_database(name: str) -> str:
    """Create an empty database; returns its SQLAlchemy asyncpg URL."""
    conn = await asyncpg.connect(admin_dsn())
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base = admin_dsn().rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"{base}/{name}"


async def drop_database(name: str) -> None:
    conn = await asyncpg.connect(admin_dsn())
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def eventually(
    check: Callable[[], Awaitable[T | None]], *, timeout: float = 30.0, interval: float = 0.2
) -> T:
    """Poll ``check`` until it returns a truthy value (so never None: the type says so); fail with
    its last result or error."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            result = await check()
            if result:
                return result
            last = result
        except AssertionError as exc:
            last = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s; last: {last!r}")
        await asyncio.sleep(interval)


def envelope_of(record: tuple[bytes | None, Envelope | None, Any]) -> Envelope:
    """The envelope of a record :func:`read_topic` returned; fails on an unreadable one."""
    env = record[1]
    assert env is not None, f"unreadable record: {record[2]!r}"
    return env


async def read_topic(
    topic: str, *, count: int, timeout: float = 30.0, bootstrap: str | None = None
) -> list[tuple[bytes | None, Envelope | None, Any]]:
    """Read ``count`` records from the start of a topic: (key, envelope or None if unreadable, raw
    record)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap or kafka_bootstrap(),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )
    await consumer.start()
    out: list[tuple[bytes | None, Envelope | None, object]] = []
    deadline = time.monotonic() + timeout
    try:
        while len(out) < count and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for rec in records:
                    try:
                        env: Envelope | None = read_headers(rec.headers, rec.value)
                    except ValueError:
                        env = None
                    out.append((rec.key, env, rec))
    finally:
        await consumer.stop()
    return out


@asynccontextmanager
async def migrated_database(migrations_dir: Path, prefix: str = "t") -> AsyncIterator[str]:
    """A fresh database migrated to head with a service's migrations; dropped afterwards. Yields its
    URL."""
    name = unique_name(prefix)
    url = await create_database(name)
    try:
        await asyncio.to_thread(upgrade, migrations_dir, url)
        yield url
    finally:
        await drop_database(name)


def unique_topic_prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}."


@asynccontextmanager
async def running_app(
    app: FastAPI, *, base_url: str = "http://testserver"
) -> AsyncIterator[httpx.AsyncClient]:
    """Start the app's runtime (producer, relay, consumers) and give an HTTP client bound to the app
    in-process.

    The topics of the app's prefix are created first, from the catalog."""
    runtime = app.state.runtime
    await create_topics(runtime.settings.kafka_bootstrap_servers, runtime.settings.topic_prefix)
    await runtime.start()
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=base_url
        ) as client:
            yield client
    finally:
        await runtime.stop()


async def read_to_end(topic: str, *, timeout: float = 10.0, bootstrap: str | None = None) -> list:
    """Every record on ``topic`` up to its end offsets at the call, partition by partition in offset
    order (raw aiokafka records). Unlike :func:`read_topic` it needs no expected count."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap or kafka_bootstrap(),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )
    await consumer.start()
    out: list = []
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not tps:
            return out
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            positions = [await consumer.position(tp) for tp in tps]
            if all(pos >= ends[tp] for pos, tp in zip(positions, tps, strict=True)):
                break
            for tp, records in (await consumer.getmany(timeout_ms=300)).items():
                out.extend(r for r in records if r.offset < ends[tp])
    finally:
        await consumer.stop()
    return out


async def read_events(
    topic: str, *, timeout: float = 10.0
) -> list[tuple[bytes | None, Envelope, dict[str, Any]]]:
    """Every record on ``topic`` up to its end offsets (:func:`read_to_end`), decoded: (key,
    envelope, JSON body)."""
    envs = [
        (r.key, read_headers(r.headers, r.value)) for r in await read_to_end(topic, timeout=timeout)
    ]
    return [(key, env, orjson.loads(env.data)) for key, env in envs]


async def delete_topics(prefix: str, bootstrap: str | None = None) -> None:
    """Delete every topic whose name starts with ``prefix`` (a test's own topics)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap or kafka_bootstrap())
    await admin.start()
    try:
        mine = [t for t in await admin.list_topics() if t.startswith(prefix)]
        if mine:
            await admin.delete_topics(mine)
    finally:
        await admin.close()


@asynccontextmanager
async def own_topics() -> AsyncIterator[str]:
    """A unique topic prefix for one test or module; its topics are deleted afterwards (or the local
    broker slows down run after run)."""
    prefix = unique_topic_prefix()
    try:
        yield prefix
    finally:
        with contextlib.suppress(Exception):
            await delete_topics(prefix)


@asynccontextmanager
async def started_producer(settings: ServiceSettings) -> AsyncIterator[AIOKafkaProducer]:
    """The service's own safe producer, for a test to feed it events."""
    producer = create_producer(settings)
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()


def fast_test_settings(**overrides: object) -> dict[str, Any]:
    """Settings for a service under test: the test environment with its own secrets (it refuses the
    development defaults), quick retries and a short outbox poll. Pass to the service's
    Settings(**...)."""
    values: dict[str, Any] = {
        "environment": "test",
        "log_json": False,
        "jwt_secret": "tests-jwt-secret-" + "j" * 40,
        "api_key_pepper": "tests-api-key-pepper-" + "p" * 40,
        "consumer_backoff_initial_s": 0.05,
        "consumer_backoff_max_s": 0.2,
        "consumer_max_attempts": 3,
        "outbox_fallback_poll_s": 0.5,
    }
    values.update(overrides)
    return values


def settings_under_test(
    settings_type: type[S], database_url: str, topic_prefix: str, **overrides: Any
) -> S:
    """A service's settings for a test: its own database and topic prefix, quiet logs and
    :func:`fast_test_settings`; ``overrides`` win."""
    return settings_type(
        **fast_test_settings(
            database_url=database_url,
            topic_prefix=topic_prefix,
            log_level="WARNING",
            **overrides,
        )
    )


# --------------------------------------------------------------------------- event builders


def new_customer() -> str:
    """A customer id no other test uses."""
    return f"cust-{uuid.uuid4().hex[:12]}"


def make_alert(
    customer_id: str,
    *,
    alert_id: str | None = None,
    alert_version: int = 1,
    recall_id: str | None = None,
    title: str = "Acme kettle KX-1",
    kind: ev.RecallKind = "recall",
    severity: ev.Severity = "high",
    tier: ev.AlertTier = "confirmed",
    remedies: tuple[ev.RemedyType, ...] = ("refund_on_destruction", "replacement"),
    units: int = 2,
    unit_price: str = "19.99",
    admin_id: str | None = None,
) -> ev.AlertState:
    """An alert on one order line of an Acme kettle (bought 14 Mar 2025, order ord-20250314-1),
    with ids of its own unless given."""
    return ev.AlertState(
        alert_id=alert_id or str(uuid.uuid4()),
        alert_version=alert_version,
        customer_id=customer_id,
        recall_id=recall_id or f"rc-{uuid.uuid4().hex[:10]}",
        recall_version=1,
        seller_id="seller-1",
        tier=tier,
        lines=[
            ev.AffectedLine(
                order_id="ord-20250314-1",
                line_id=f"line-{uuid.uuid4().hex[:8]}",
                product_id="prod-kettle",
                title=title,
                gtin="00012345678905",
                model_number="KX-1",
                seller_id="seller-1",
                purchased_at=datetime(2025, 3, 14, 10, 0, tzinfo=UTC),
                units=units,
                unit_price=Decimal(unit_price),
                currency="EUR",
            )
        ],
        recall=ev.RecallContent(
            kind=kind,
            title=title,
            product_description="A 1.7 l electric kettle, white.",
            hazard="The base can overheat and cause burns.",
            severity=severity,
            stop_using="Unplug the kettle and stop using it.",
            remedies=[ev.Remedy(type=r) for r in remedies],
            consumer_contact="recalls@acme.example",
        ),
        business_account_admin_id=admin_id,
    )


def withdrawn(alert: ev.AlertState, version: int | None = None) -> ev.AlertWithdrawn:
    """The withdrawal of ``alert`` (the next version unless given)."""
    return ev.AlertWithdrawn(
        alert_id=alert.alert_id,
        alert_version=version or alert.alert_version + 1,
        customer_id=alert.customer_id,
        recall_id=alert.recall_id,
        recall_version=alert.recall_version + 1,
        reason="scope corrected",
    )
