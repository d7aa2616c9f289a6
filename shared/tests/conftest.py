"""Fixtures for the shared library's tests.

Integration fixtures use the real PostgreSQL and Kafka: every test gets a fresh database (outbox,
inbox and an ``applied`` table the test handlers write to) and a unique topic prefix, both removed
afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from pydantic_settings import SettingsConfigDict
from sqlalchemy import Column, Integer, MetaData, String, Table, func, select, text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from recall_shared import envelope
from recall_shared import events as ev
from recall_shared.consumer import ConsumerRunner, Handler, Record
from recall_shared.db import create_session_factory, new_metadata
from recall_shared.kafka import create_producer, create_topics
from recall_shared.metrics import Metrics
from recall_shared.outbox import OutboxRelay
from recall_shared.settings import ServiceSettings
from recall_shared.testing import (
    create_database,
    delete_topics,
    drop_database,
    kafka_bootstrap,
    unique_name,
)
from recall_shared.topics import TopicSpec

SERVICE = "recall-intake"  # its dead-letter topic (deadletter.recall-intake.v1) is in the catalog


class SharedTestSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="RECALL_SHARED_TEST_", extra="ignore", frozen=True)

    service_name: str = SERVICE


def make_settings(**overrides: object) -> SharedTestSettings:
    values: dict[str, object] = {
        "environment": "test",
        "jwt_secret": "test-jwt-secret-" + "j" * 32,
        "api_key_pepper": "test-api-key-pepper-" + "p" * 32,
        "database_url": "postgresql+asyncpg://nobody@127.0.0.1:1/none",
        "kafka_bootstrap_servers": kafka_bootstrap(),
        "topic_prefix": "",
        "consumer_backoff_initial_s": 0.01,
        "consumer_backoff_max_s": 0.05,
        "consumer_max_attempts": 3,
        "outbox_fallback_poll_s": 0.5,
        "log_json": False,
    }
    values.update(overrides)
    return SharedTestSettings(**values)  # type: ignore[arg-type]


@pytest.fixture
def settings_factory() -> Callable[..., SharedTestSettings]:
    return make_settings


# --------------------------------------------------------------------------- integration
# environment


@dataclass
class Infra:
    db_name: str
    database_url: str
    prefix: str
    engine: AsyncEngine
    session_factory: async_sessionmaker[AsyncSession]
    applied: Table
    _cleanups: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    @property
    def bootstrap(self) -> str:
        return kafka_bootstrap()

    def settings(self, **overrides: object) -> SharedTestSettings:
        values: dict[str, object] = {"database_url": self.database_url, "topic_prefix": self.prefix}
        values.update(overrides)
        return make_settings(**values)

    def topic(self, spec: TopicSpec) -> str:
        return spec.physical(self.prefix)

    async def create_topics(self, *specs: TopicSpec) -> list[str]:
        return await create_topics(self.bootstrap, self.prefix, specs)

    async def producer(self, **overrides: object) -> AIOKafkaProducer:
        producer = create_producer(self.settings(), **overrides)
        await producer.start()
        self._cleanups.append(producer.stop)
        return producer

    async def send(
        self,
        producer: AIOKafkaProducer,
        spec: TopicSpec,
        event: ev.Event,
        *,
        event_id: str | None = None,
    ) -> tuple[str, object]:
        """Publish one event as a service would (CloudEvents headers); returns (ce_id,
        RecordMetadata)."""
        env = envelope.wrap(event, source="/tests", event_id=event_id, correlation_id="corr-test")
        meta = await producer.send_and_wait(
            self.topic(spec),
            value=env.data,
            key=event.partition_key().encode(),
            headers=env.headers(),
        )
        return env.id, meta

    async def scalar(self, sql: str, **params: object) -> object:
        async with self.engine.connect() as conn:
            return (await conn.execute(text(sql), params)).scalar()

    async def applied_ids(self) -> list[str]:
        async with self.engine.connect() as conn:
            return list(
                (
                    await conn.execute(select(self.applied.c.event_id).order_by(self.applied.c.id))
                ).scalars()
            )

    async def applied_count(self) -> int:
        async with self.engine.connect() as conn:
            return (await conn.execute(select(func.count()).select_from(self.applied))).scalar_one()

    def runner(
        self,
        handlers: dict[type[ev.Event], Handler],
        topics: list[TopicSpec],
        *,
        producer: AIOKafkaProducer,
        metrics: Metrics | None = None,
        group_suffix: str = "",
        on_applied: Callable[[Record], Awaitable[None]] | None = None,
        **settings_overrides: object,
    ) -> ConsumerRunner:
        return ConsumerRunner(
            settings=self.settings(**settings_overrides),
            topics=topics,
            handlers=handlers,
            session_factory=self.session_factory,
            producer=producer,
            metrics=metrics or Metrics(SERVICE),
            group_suffix=group_suffix,
            on_applied=on_applied,
        )

    def relay(
        self, producer: AIOKafkaProducer, *, cls: type[OutboxRelay] = OutboxRelay, **kw: object
    ) -> OutboxRelay:
        options: dict[str, object] = {"service": SERVICE, "batch_size": 500, "fallback_poll_s": 0.5}
        options.update(kw)
        return cls(database_url=self.database_url, producer=producer, **options)  # type: ignore[arg-type]

    async def inserting_handler(
        self, session: AsyncSession, event: ev.Event, env: envelope.Envelope
    ) -> None:
        """A handler whose effect is one row per applied event."""
        await session.execute(
            self.applied.insert().values(event_id=env.id, subject=env.subject or "")
        )


@pytest.fixture
async def infra() -> AsyncIterator[Infra]:
    db_name = unique_name("shared_test")
    prefix = f"t{uuid.uuid4().hex[:12]}."
    url = await create_database(db_name)
    engine = create_async_engine(url, pool_size=5, max_overflow=10)
    metadata: MetaData = new_metadata()
    applied = Table(
        "applied",
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column(
            "event_id", String(64), nullable=False
        ),  # deliberately not unique: doubles must show
        Column("subject", String(255), nullable=False),
    )
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    env = Infra(db_name, url, prefix, engine, create_session_factory(engine), applied)
    try:
        yield env
    finally:
        for cleanup in reversed(env._cleanups):
            with contextlib.suppress(Exception):
                await cleanup()
        await engine.dispose()
        with contextlib.suppress(Exception):
            await delete_topics(prefix, env.bootstrap)
        await drop_database(db_name)


# --------------------------------------------------------------------------- running tasks in tests


@contextlib.asynccontextmanager
async def running(component: ConsumerRunner | OutboxRelay) -> AsyncIterator[asyncio.Task[None]]:
    """Run a runner or relay as a task for the block; stop it (cancel if it does not stop)
    afterwards."""
    task = asyncio.create_task(component.run())
    try:
        yield task
    finally:
        component.stop()
        done, _ = await asyncio.wait({task}, timeout=10)
        if not done:
            task.cancel()
        with contextlib.suppress(BaseException):
            await task


@pytest.fixture
def run_task() -> Callable[
    [ConsumerRunner | OutboxRelay], contextlib.AbstractAsyncContextManager[asyncio.Task[None]]
]:
    return running


# --------------------------------------------------------------------------- Kafka inspection


async def end_offsets(topic: str, bootstrap: str | None = None) -> dict[int, int]:
    """The end offset of every partition of ``topic`` (the number of records: no transactions
    here)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap or kafka_bootstrap(), enable_auto_commit=False
    )
    await consumer.start()
    try:
        partitions = None
        for _ in range(50):
            partitions = await consumer._client.fetch_all_metadata()
            parts = partitions.partitions_for_topic(topic)
            if parts:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError(f"topic {topic} not found")
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        offsets = await consumer.end_offsets(tps)
        return {tp.partition: off for tp, off in offsets.items()}
    finally:
        await consumer.stop()


@pytest.fixture
def topic_end_offsets() -> Callable[..., Awaitable[dict[int, int]]]:
    return end_offsets


async def committed_offsets(group: str, bootstrap: str | None = None) -> dict[tuple[str, int], int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap or kafka_bootstrap())
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
        return {(tp.topic, tp.partition): meta.offset for tp, meta in offsets.items()}
    finally:
        await admin.close()


@pytest.fixture
def group_offsets() -> Callable[..., Awaitable[dict[tuple[str, int], int]]]:
    return committed_offsets


def counter_total(metrics: Metrics, name: str, **labels: str) -> float:
    """Sum of a counter's samples (``name`` without ``_total``), filtered by labels."""
    total = 0.0
    for family in metrics.registry.collect():
        if family.name != name:
            continue
        for sample in family.samples:
            if sample.name == f"{name}_total" and all(
                sample.labels.get(k) == v for k, v in labels.items()
            ):
                total += sample.value
    return total


@pytest.fixture
def metric_total() -> Callable[..., float]:
    return counter_total
