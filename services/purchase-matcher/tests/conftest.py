"""Fixtures for purchase-matcher's tests.

Integration tests run the real app (``create_app``) on a fresh migrated PostgreSQL database and a
unique Kafka topic prefix. Orders and recalls arrive the production way, as CloudEvents on orders.v1
and recalls.v1; alerts are read back from alerts.v1. API keys for the read API arrive on sellers.v1
as recall-intake issues them (HMAC hashes; :meth:`MatcherService.issue_key`). "Settled" means the
matcher's consumer group has committed every input record and its outbox is empty, so everything it
will emit is on the topic.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from fastapi import FastAPI
from sqlalchemy import text

import purchase_matcher
from purchase_matcher.app import create_app
from purchase_matcher.settings import Settings
from recall_shared import envelope, sample_events
from recall_shared import events as ev
from recall_shared.auth import generate_api_key, hash_api_key
from recall_shared.envelope import parse, read_headers
from recall_shared.testing import (
    eventually,
    fast_test_settings,
    kafka_bootstrap,
    migrated_database,
    own_topics,
    read_to_end,
    running_app,
    started_producer,
)
from recall_shared.topics import (
    ALERTS,
    CATALOG_LISTINGS,
    ORDERS,
    RECALLS,
    SELLERS,
    dead_letter_topic,
)

MIGRATIONS = Path(purchase_matcher.__file__).parent / "migrations"
SOURCE = "/tests/upstream"


# --------------------------------------------------------------------------- event builders


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def recall_snapshot(
    recall_id: str,
    *rules: ev.ScopeRule,
    version: int = 1,
    published_at: datetime | None = None,
    title: str = "Acme kettle KX-1 recall",
    seller_id: str | None = "seller-1",
) -> ev.RecallSnapshot:
    """The shared test recall, a seller's, published now unless told."""
    return sample_events.recall_snapshot(
        *rules,
        recall_id=recall_id,
        version=version,
        seller_id=seller_id,
        title=title,
        published_at=published_at or datetime.now(UTC),
    )


def order_placed(
    customer_id: str,
    *products: str,
    order_id: str | None = None,
    placed_at: datetime | None = None,
    quantity: int = 1,
    seller_id: str = "seller-1",
    business_account_admin_id: str | None = None,
) -> ev.OrderPlaced:
    order_id = order_id or new_id("ord")
    return ev.OrderPlaced(
        order_id=order_id,
        customer_id=customer_id,
        placed_at=placed_at or datetime.now(UTC) - timedelta(days=30),
        lines=[
            ev.OrderLine(
                line_id=f"{order_id}-{i}",
                product_id=p,
                title=f"Product {p}",
                seller_id=seller_id,
                quantity=quantity,
                unit_price=Decimal("19.99"),
                currency="EUR",
            )
            for i, p in enumerate(products)
        ],
        business_account_admin_id=business_account_admin_id,
    )


@dataclass(frozen=True)
class Builders:
    new_id: Callable[[str], str] = new_id
    snapshot: Callable[..., ev.RecallSnapshot] = recall_snapshot
    order: Callable[..., ev.OrderPlaced] = order_placed


@pytest.fixture
def build() -> Builders:
    return Builders()


# --------------------------------------------------------------------------- the running service


@dataclass
class AlertRecord:
    key: str
    type: str
    ce_id: str
    event: Any


@dataclass
class MatcherService:
    app: FastAPI
    client: httpx.AsyncClient
    settings: Settings
    producer: AIOKafkaProducer
    _operator_key: str | None = None
    # ce_ids a test means to have dead-lettered; any other dead letter fails it
    expected_dead_letters: set[str] = field(default_factory=set)

    @property
    def group(self) -> str:
        return self.settings.consumer_group_prefix

    def topic(self, spec: Any) -> str:
        return spec.physical(self.settings.topic_prefix)

    async def send(self, event: ev.Event, *, event_id: str | None = None) -> str:
        """Publish one upstream event with CloudEvents headers, keyed as its topic says; returns the
        ce_id."""
        env = envelope.wrap(event, source=SOURCE, event_id=event_id)
        await self.producer.send_and_wait(
            self.settings.topic_prefix + event.topic,
            value=env.data,
            key=event.partition_key().encode(),
            headers=env.headers(),
        )
        return env.id

    async def send_and_settle(self, *events: ev.Event) -> list[str]:
        ids = [await self.send(e) for e in events]
        await self.settled()
        return ids

    async def key_works(self, plaintext: str) -> bool:
        """Whether the read API accepts the key (an unknown recall is then 404, not 401)."""
        resp = await self.client.get(
            f"/v1/recalls/{new_id('no-such-rc')}/matches", headers={"X-Api-Key": plaintext}
        )
        assert resp.status_code in (401, 404), resp.text
        return resp.status_code == 404

    async def issue_key(
        self, role: str = "seller", seller_id: str | None = None, *, wait: bool = True
    ) -> tuple[str, str]:
        """A key as recall-intake issues it on sellers.v1: (plaintext, key_id); waits until it
        works."""
        plaintext, key_id = generate_api_key(), str(uuid.uuid4())
        await self.send(
            ev.ApiKeyIssued(
                key_id=key_id,
                key_hash=hash_api_key(plaintext, self.settings.api_key_pepper),
                role=role,
                seller_id=seller_id,
                issued_at=datetime.now(UTC),
            )
        )
        if wait:
            await eventually(lambda: self.key_works(plaintext), timeout=15, interval=0.1)
        return plaintext, key_id

    async def revoke_key(self, plaintext: str, key_id: str) -> None:
        """Revoke on sellers.v1, as recall-intake does; waits until the key is refused."""
        await self.send(ev.ApiKeyRevoked(key_id=key_id, revoked_at=datetime.now(UTC)))

        async def refused() -> bool:
            return not await self.key_works(plaintext)

        await eventually(refused, timeout=15, interval=0.1)
        await self.guard_caught_up()

    async def operator(self) -> dict[str, str]:
        """Headers with an operator key (issued on first use)."""
        if self._operator_key is None:
            self._operator_key, _ = await self.issue_key("operator")
        return {"X-Api-Key": self._operator_key}

    async def scalar(self, sql: str, **params: object) -> Any:
        async with self.app.state.runtime.session_factory() as session:
            return (await session.execute(text(sql), params)).scalar()

    async def guard_caught_up(self) -> None:
        """The checkout guard's index (purchase_matcher.guard_index) holds what the tables hold
        now: at most one refresh interval after a change, which a test should not guess."""
        await self.app.state.sellability_guard.index.caught_up()

    async def settled(self, within_s: float = 30.0) -> None:
        """Every record on orders.v1 and recalls.v1 is consumed and committed, the outbox is
        published, and the checkout guard's index has read the result."""

        async def check() -> bool:
            ends = await end_offsets([self.topic(ORDERS), self.topic(RECALLS)])
            admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap())
            await admin.start()
            try:
                committed = {
                    (tp.topic, tp.partition): meta.offset
                    for tp, meta in (await admin.list_consumer_group_offsets(self.group)).items()
                }
            finally:
                await admin.close()
            lagging = {
                tp: end for tp, end in ends.items() if end > 0 and committed.get(tp, -1) < end
            }
            assert not lagging, f"not yet consumed: {lagging}"
            return await self.scalar("SELECT count(*) FROM outbox") == 0

        await eventually(check, timeout=within_s, interval=0.1)
        await self.guard_caught_up()

    async def keys_settled(self, within_s: float = 30.0) -> None:
        """Every record on sellers.v1 is consumed and committed by the matcher's key consumer
        group."""

        async def check() -> bool:
            ends = await end_offsets([self.topic(SELLERS)])
            admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap())
            await admin.start()
            try:
                committed = {
                    (tp.topic, tp.partition): meta.offset
                    for tp, meta in (
                        await admin.list_consumer_group_offsets(self.group + ".sellers")
                    ).items()
                }
            finally:
                await admin.close()
            lagging = {
                tp: end for tp, end in ends.items() if end > 0 and committed.get(tp, -1) < end
            }
            assert not lagging, f"not yet consumed: {lagging}"
            return True

        await eventually(check, timeout=within_s, interval=0.1)

    async def catalog_settled(self, within_s: float = 30.0) -> None:
        """Every record on catalog.listings.v1 is consumed and committed by the matcher's catalog
        group, and the outbox is published."""

        async def check() -> bool:
            ends = await end_offsets([self.topic(CATALOG_LISTINGS)])
            admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap())
            await admin.start()
            try:
                offsets = await admin.list_consumer_group_offsets(self.group + ".catalog")
            finally:
                await admin.close()
            committed = {(tp.topic, tp.partition): meta.offset for tp, meta in offsets.items()}
            lagging = {
                tp: end for tp, end in ends.items() if end > 0 and committed.get(tp, -1) < end
            }
            assert not lagging, f"not yet consumed: {lagging}"
            return await self.scalar("SELECT count(*) FROM outbox") == 0

        await eventually(check, timeout=within_s, interval=0.1)

    async def announced(self, spec: Any) -> list[tuple[str, Any]]:
        """(ce_id, event) of everything on one of the matcher's topics, parsed."""
        out = []
        for rec in await read_to_end(self.topic(spec)):
            env = read_headers(rec.headers, rec.value)
            out.append((env.id, parse(env)))
        return out

    async def alerts(self) -> list[AlertRecord]:
        """Everything on alerts.v1, parsed."""
        out = []
        for rec in await read_to_end(self.topic(ALERTS)):
            key = rec.key
            env = read_headers(rec.headers, rec.value)
            out.append(
                AlertRecord(
                    key=key.decode() if key else "", type=env.type, ce_id=env.id, event=parse(env)
                )
            )
        return out

    async def alerts_after(self, before: list[AlertRecord]) -> list[AlertRecord]:
        """What appeared on alerts.v1 since ``before`` was read (records of different partitions
        interleave, so this goes by event id, not by position)."""
        seen = {r.ce_id for r in before}
        return [r for r in await self.alerts() if r.ce_id not in seen]

    async def dead_letters(self) -> list[Any]:
        return await read_to_end(self.topic(dead_letter_topic("purchase-matcher")))


async def end_offsets(topics: list[str]) -> dict[tuple[str, int], int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap(), enable_auto_commit=False)
    await consumer.start()
    try:
        tps = []
        for topic in topics:
            parts = consumer.partitions_for_topic(topic)
            if not parts:
                await consumer._client.force_metadata_update()
                parts = consumer.partitions_for_topic(topic) or set()
            tps += [TopicPartition(topic, p) for p in sorted(parts)]
        offsets = await consumer.end_offsets(tps) if tps else {}
        return {(tp.topic, tp.partition): off for tp, off in offsets.items()}
    finally:
        await consumer.stop()


@pytest.fixture
async def matcher() -> AsyncIterator[MatcherService]:
    async with own_topics() as prefix, migrated_database(MIGRATIONS, "matcher_test") as url:
        settings = Settings(**fast_test_settings(database_url=url, topic_prefix=prefix))
        app = create_app(settings)
        async with running_app(app) as client, started_producer(settings) as producer:
            service = MatcherService(app=app, client=client, settings=settings, producer=producer)
            yield service
            # whatever a test did, nothing else may have been dead-lettered
            lettered = {dict(r.headers)["ce_id"].decode() for r in await service.dead_letters()}
            assert lettered == service.expected_dead_letters, (
                "purchase-matcher dead-lettered a message"
            )
