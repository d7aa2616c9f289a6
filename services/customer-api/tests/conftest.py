"""Fixtures for customer-api's tests.

Integration tests run the real app (``create_app``) on a fresh migrated PostgreSQL database and a
unique Kafka topic prefix. The read model is fed the way production feeds it: by publishing
CloudEvents on ``alerts.v1``, ``remedies.v1`` and ``notifications.v1``; what the service emits is
read back from Kafka.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
import uvicorn
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI

import customer_api
from customer_api.app import create_app
from customer_api.settings import Settings
from recall_shared import envelope
from recall_shared import events as ev
from recall_shared.auth import issue_customer_token
from recall_shared.envelope import Envelope, read_headers
from recall_shared.testing import (
    eventually,
    make_alert,
    migrated_database,
    new_customer,
    own_topics,
    read_to_end,
    running_app,
    settings_under_test,
    started_producer,
    withdrawn,
)
from recall_shared.topics import TopicSpec

MIGRATIONS = Path(customer_api.__file__).parent / "migrations"
JWT_SECRET = "customer-api-tests-" + "k" * 40
OTHER_SECRET = "someone-elses-secret-" + "z" * 40


# --------------------------------------------------------------------------- event builders


def case_transitioned(
    request_id: str,
    alert: ev.AlertState,
    *,
    state: ev.CaseState,
    transition: str,
    from_state: ev.CaseState | None,
    refunded: str = "0",
    currency: str | None = None,
    remedy: ev.RemedyType = "refund_on_destruction",
) -> ev.RemedyCaseTransitioned:
    return ev.RemedyCaseTransitioned(
        case_id=f"case-{request_id[:8]}",
        request_id=request_id,
        alert_id=alert.alert_id,
        customer_id=alert.customer_id,
        recall_id=alert.recall_id,
        seller_id="seller-1",
        remedy=remedy,
        transition=transition,
        from_state=from_state,
        state=state,
        refunded_amount=Decimal(refunded),
        currency=currency,
        occurred_at=datetime.now(UTC),
    )


# --------------------------------------------------------------------------- Kafka helpers


async def read_all(topic: str, *, timeout: float = 10.0) -> list[tuple[bytes | None, Envelope]]:
    """Every record currently on ``topic`` (up to its end offsets), as (key, envelope)."""
    return [
        (r.key, read_headers(r.headers, r.value)) for r in await read_to_end(topic, timeout=timeout)
    ]


# --------------------------------------------------------------------------- the running service


@dataclass
class Api:
    client: httpx.AsyncClient
    settings: Settings
    producer: AIOKafkaProducer
    sent_ids: list[str] = field(default_factory=list)
    base_url: str | None = None  # a real HTTP server's address, when started with serve_http=True

    @property
    def prefix(self) -> str:
        return self.settings.topic_prefix

    def topic(self, spec: TopicSpec) -> str:
        return spec.physical(self.prefix)

    async def publish(self, event: ev.Event, *, event_id: str | None = None) -> str:
        """Publish as the owning service would: CloudEvents headers, key = partition key."""
        env = envelope.wrap(event, source="/tests/customer-api", event_id=event_id)
        topic = f"{self.prefix}{event.topic}"
        await self.producer.send_and_wait(
            topic, value=env.data, key=event.partition_key().encode(), headers=env.headers()
        )
        self.sent_ids.append(env.id)
        return env.id

    def token(
        self, customer_id: str, *, ttl: timedelta = timedelta(hours=1), secret: str = JWT_SECRET
    ) -> str:
        return issue_customer_token(customer_id, secret, ttl=ttl)

    def auth(self, customer_id: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(customer_id)}"}

    def page_cookie(self, customer_id: str, **token_kw: object) -> dict[str, str]:
        """Headers that carry the pages' session cookie (the same customer JWT)."""
        return {"Cookie": f"recall_session={self.token(customer_id, **token_kw)}"}  # type: ignore[arg-type]

    async def get_alert(self, customer_id: str, alert_id: str) -> httpx.Response:
        return await self.client.get(f"/v1/me/alerts/{alert_id}", headers=self.auth(customer_id))

    async def wait_for_alert(
        self, customer_id: str, alert_id: str, timeout: float = 15.0, **expect: object
    ) -> dict:
        """Wait until the customer sees the alert (and, optionally, fields with the expected
        values)."""

        async def check() -> dict | None:
            r = await self.get_alert(customer_id, alert_id)
            if r.status_code != 200:
                return None
            body = r.json()
            for k, v in expect.items():
                assert body.get(k) == v, f"{k}={body.get(k)!r}, want {v!r}"
            return body

        return await eventually(check, timeout=timeout, interval=0.1)

    async def raise_alert(self, alert: ev.AlertState) -> dict:
        await self.publish(ev.AlertRaised(alert=alert))
        return await self.wait_for_alert(alert.customer_id, alert.alert_id)


def make_settings(url: str, prefix: str) -> Settings:
    return settings_under_test(
        Settings,
        url,
        prefix,
        jwt_secret=JWT_SECRET,
        # Nothing listens here: the page's proof upload meets an unreachable refund-logistics
        # (tests/e2e runs the real one).
        refund_logistics_url="http://127.0.0.1:9",
        refund_logistics_timeout_s=2.0,
    )


class _QuietServer(uvicorn.Server):
    """uvicorn on the test's own event loop (the app's pools live there); signals stay pytest's."""

    def capture_signals(self):
        return contextlib.nullcontext()


@contextlib.asynccontextmanager
async def http_server(app: FastAPI) -> AsyncIterator[str]:
    """Serve ``app`` on a free 127.0.0.1 port (for a real browser); yields the base URL. The app's
    runtime is started by the caller (``running_app``), so uvicorn's lifespan is off."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = _QuietServer(
        uvicorn.Config(app, lifespan="off", log_config=None, access_log=False, log_level="warning")
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            if task.done():
                task.result()
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, timeout=5)
        sock.close()


@contextlib.asynccontextmanager
async def started_api(*, serve_http: bool = False) -> AsyncIterator[Api]:
    async with own_topics() as prefix, migrated_database(MIGRATIONS, prefix="custapi") as url:
        settings = make_settings(url, prefix)
        app = create_app(settings)
        async with running_app(app) as client, contextlib.AsyncExitStack() as stack:
            base_url = await stack.enter_async_context(http_server(app)) if serve_http else None
            producer = await stack.enter_async_context(started_producer(settings))
            yield Api(client=client, settings=settings, producer=producer, base_url=base_url)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def api() -> AsyncIterator[Api]:
    """One running service shared by a module's tests; every test uses its own customers, and every
    query of this API is scoped to one customer, so the tests cannot see each other's data. Modules
    using it run on the module's event loop: ``pytest.mark.asyncio(loop_scope="module")``."""
    async with started_api() as a:
        yield a


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "browser: drives Debian's headless Chromium with Playwright (tests/browser)"
    )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def served_api() -> AsyncIterator[Api]:
    """Like ``api``, and also served over real HTTP on a free 127.0.0.1 port (``base_url``), for a
    browser."""
    async with started_api(serve_http=True) as a:
        yield a


@pytest.fixture
def alert_factory() -> Callable[..., ev.AlertState]:
    return make_alert


@pytest.fixture
def customer_id() -> str:
    return new_customer()


@pytest.fixture(scope="session")
def events() -> object:
    """The event builders, for test modules (which may not import each other or this conftest)."""

    class _Builders:
        alert = staticmethod(make_alert)
        raised = staticmethod(lambda a: ev.AlertRaised(alert=a))
        updated = staticmethod(lambda a: ev.AlertUpdated(alert=a))
        withdrawn = staticmethod(withdrawn)
        case_transitioned = staticmethod(case_transitioned)
        new_customer = staticmethod(new_customer)
        read_all = staticmethod(read_all)
        other_secret = OTHER_SECRET

    return _Builders()
