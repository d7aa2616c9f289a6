"""Fixtures for recall-intake's tests.

Integration tests run the real app (``create_app``) on a fresh migrated PostgreSQL database and a
unique Kafka topic prefix (``running_app`` starts its producer, outbox relay and catalog.listings.v1
consumer). Listings reach the ownership read model the production way: as CloudEvents on
catalog.listings.v1. What the service emits is read back from Kafka.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI
from sqlalchemy import text
from starlette.types import ASGIApp

import recall_intake
from recall_intake.app import create_app
from recall_intake.auth import issue_key
from recall_intake.models import Listing, Seller
from recall_intake.settings import Settings
from recall_shared import envelope
from recall_shared import events as ev
from recall_shared.testing import (
    eventually,
    fast_test_settings,
    migrated_database,
    own_topics,
    running_app,
    started_producer,
)

MIGRATIONS = Path(recall_intake.__file__).parent / "migrations"


# --------------------------------------------------------------------------- request bodies


def recall_body(
    *product_ids: str,
    gtins: tuple[str, ...] = (),
    title: str = "Acme kettle KX-1 recall",
    severity: str = "high",
    **extra: Any,
) -> dict[str, Any]:
    rule: dict[str, Any] = {"product_ids": list(product_ids)}
    if gtins:
        rule["gtins"] = list(gtins)
    body: dict[str, Any] = {
        "content": {
            "title": title,
            "hazard": "The base can overheat and cause burns.",
            "severity": severity,
            "stop_using": "Unplug the kettle and stop using it.",
            "remedies": [{"type": "refund_on_destruction"}],
        },
        "rules": [rule],
    }
    body.update(extra)
    return body


@pytest.fixture
def make_recall_body() -> Callable[..., dict[str, Any]]:
    return recall_body


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def unique() -> Callable[[str], str]:
    return new_id


# --------------------------------------------------------------------------- the running service


@dataclass
class Intake:
    app: FastAPI
    client: httpx.AsyncClient
    settings: Settings
    producer: AIOKafkaProducer

    @property
    def prefix(self) -> str:
        return self.settings.topic_prefix

    def topic(self, name: str) -> str:
        return self.prefix + name

    @property
    def session_factory(self):
        return self.app.state.runtime.session_factory

    async def seller_key(self, seller_id: str | None = None) -> tuple[str, str]:
        """Register a seller (if new) and issue it a key inside a session; returns (seller_id,
        plaintext key)."""
        seller_id = seller_id or new_id("seller")
        async with self.session_factory() as session:
            if await session.get(Seller, seller_id) is None:
                session.add(Seller(seller_id=seller_id, name=f"Seller {seller_id}"))
                await session.flush()
            plaintext, _ = await issue_key(
                session,
                role="seller",
                seller_id=seller_id,
                label="test",
                pepper=self.settings.api_key_pepper,
                outbox=self.app.state.runtime.outbox,
            )
            await session.commit()
        return seller_id, plaintext

    async def operator_key(self) -> str:
        async with self.session_factory() as session:
            plaintext, _ = await issue_key(
                session,
                role="operator",
                seller_id=None,
                label="test",
                pepper=self.settings.api_key_pepper,
                outbox=self.app.state.runtime.outbox,
            )
            await session.commit()
        return plaintext

    async def send_listing(
        self, product_id: str, seller_ids: list[str], gtins: list[str] | None = None
    ) -> str:
        """Publish catalog.listing_updated.v1 as the catalog does; returns the ce_id."""
        event = ev.ListingUpdated(
            product_id=product_id,
            title=f"Product {product_id}",
            seller_ids=seller_ids,
            gtins=gtins or [],
        )
        env = envelope.wrap(event, source="/tests/catalog")
        await self.producer.send_and_wait(
            self.topic(event.topic),
            value=env.data,
            key=event.partition_key().encode(),
            headers=env.headers(),
        )
        return env.id

    async def listing_seen(self, product_id: str, seller_id: str) -> None:
        async def check() -> bool:
            async with self.session_factory() as session:
                row = await session.get(Listing, product_id, populate_existing=True)
                return row is not None and seller_id in row.seller_ids

        await eventually(check, timeout=30)

    async def listing(
        self, product_id: str, seller_ids: list[str], gtins: list[str] | None = None
    ) -> None:
        """Publish a listing and wait until the service's read model has it."""
        await self.send_listing(product_id, seller_ids, gtins)
        await self.listing_seen(product_id, seller_ids[0])

    async def scalar(self, sql: str, **params: object) -> Any:
        async with self.session_factory() as session:
            return (await session.execute(text(sql), params)).scalar()

    async def outbox_drained(self) -> None:
        async def empty() -> bool:
            return await self.scalar("SELECT count(*) FROM outbox") == 0

        await eventually(empty, timeout=20)


@pytest.fixture
def intake_settings() -> dict[str, Any]:
    """Settings of the service under test beyond the fast test defaults (a module overrides it)."""
    return {}


@pytest.fixture
async def intake(intake_settings: dict[str, Any]) -> AsyncIterator[Intake]:
    async with own_topics() as prefix, migrated_database(MIGRATIONS, "intake_test") as url:
        settings = Settings(
            **fast_test_settings(database_url=url, topic_prefix=prefix, **intake_settings)
        )
        app = create_app(settings)
        async with running_app(app) as client, started_producer(settings) as producer:
            yield Intake(app=app, client=client, settings=settings, producer=producer)


# --------------------------------------------------------------------------- loopback servers
# What the service calls out to (a regulator's feed, a seller's webhook receiver), served over
# HTTP on loopback by uvicorn on a free port.


class _LoopbackServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the test's loop keeps its own signal handlers


@contextlib.asynccontextmanager
async def serving(app: ASGIApp) -> AsyncIterator[str]:
    """Serve ``app`` until the block ends; yields its base URL (``http://127.0.0.1:<port>``)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, lifespan="off", log_config=None, access_log=False)
    server = _LoopbackServer(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert not task.done() and time.monotonic() < deadline, "server did not start"
            await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, timeout=5)
        sock.close()


@pytest.fixture
def loopback() -> Callable[[ASGIApp], AbstractAsyncContextManager[str]]:
    """``async with loopback(app) as base_url``: ``app`` served on loopback for the block."""
    return serving
