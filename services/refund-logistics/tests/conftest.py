"""Fixtures for refund-logistics' tests.

Integration tests run the real app (``create_app``) on a fresh migrated PostgreSQL database and a
unique Kafka topic prefix, fed by CloudEvents on ``recalls.v1``, ``alerts.v1`` and ``remedies.v1``;
the case transitions it emits are read back from ``remedies.v1``. Payments and labels go to the
in-process sandboxes (:class:`SandboxPaymentProvider`, :class:`SandboxCarrier`, the service's own
development/test parties), which the tests inspect. Sellers and operators authenticate with API keys
issued on ``sellers.v1`` (as recall-intake does); customers with HS256 JWTs. Every test uses its own
recall, customers and request ids.
"""

from __future__ import annotations

import functools
import hashlib
import io
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaProducer
from PIL import Image
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

import refund_logistics
from recall_shared import envelope
from recall_shared import events as ev
from recall_shared.auth import generate_api_key, hash_api_key, issue_customer_token
from recall_shared.envelope import Envelope
from recall_shared.testing import (
    eventually,
    migrated_database,
    new_customer,
    own_topics,
    read_events,
    running_app,
    settings_under_test,
    started_producer,
)
from recall_shared.topics import REMEDIES
from refund_logistics.app import create_app
from refund_logistics.carrier import SandboxCarrier
from refund_logistics.payments import RefundResult, SandboxPaymentProvider
from refund_logistics.settings import Settings

MIGRATIONS = Path(refund_logistics.__file__).parent / "migrations"


class CountingSandbox(SandboxPaymentProvider):
    """The sandbox provider, also recording every call (the sandbox alone would hide a repeated call
    with the same idempotency key, which is fine for money but worth seeing in a test)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, Decimal, str, str]] = []

    async def refund(
        self,
        *,
        idempotency_key: str,
        amount: Decimal,
        currency: str,
        reference: str,
        order_id: str | None = None,
        line_id: str | None = None,
    ) -> RefundResult:
        self.calls.append((idempotency_key, amount, currency, reference))
        return await super().refund(
            idempotency_key=idempotency_key,
            amount=amount,
            currency=currency,
            reference=reference,
            order_id=order_id,
            line_id=line_id,
        )

    def refunds_for(self, case_id: str) -> list[RefundResult]:
        return [r for k, r in self.refunds.items() if k.startswith(f"refund:{case_id}:")]

    def calls_for(self, case_id: str) -> list[tuple[str, Decimal, str, str]]:
        return [c for c in self.calls if c[3] == case_id]


# --------------------------------------------------------------------------- event builders


def recall(
    *,
    enrolled: bool = True,
    contact: str = "Acme recalls, 0800 123 456, recalls@acme.example",
    remedies: tuple[ev.RemedyType, ...] = ("refund_on_destruction", "refund_with_return"),
) -> ev.RecallSnapshot:
    return ev.RecallSnapshot(
        recall_id=f"rc-{uuid.uuid4().hex[:10]}",
        version=1,
        seller_id=f"seller-{uuid.uuid4().hex[:6]}",
        content=ev.RecallContent(
            title="Acme kettle KX-1",
            hazard="Burns.",
            severity="high",
            stop_using="Unplug it.",
            remedies=[ev.Remedy(type=r) for r in remedies],
            consumer_contact=contact,
        ),
        rules=[ev.ScopeRule(product_ids=["prod-kettle"])],
        published_at=datetime.now(UTC),
        logistics_enrolled=enrolled,
    )


def alert(
    rc: ev.RecallSnapshot,
    customer_id: str,
    *,
    lines: Sequence[tuple[int, str]] = ((2, "19.99"),),
    currency: str = "EUR",
) -> ev.AlertState:
    """An alert for ``rc``; ``lines`` are (units, unit price)."""
    return ev.AlertState(
        alert_id=str(uuid.uuid4()),
        alert_version=1,
        customer_id=customer_id,
        recall_id=rc.recall_id,
        recall_version=rc.version,
        seller_id=rc.seller_id,
        tier="confirmed",
        lines=[
            ev.AffectedLine(
                order_id=f"ord-{i}",
                line_id=f"line-{i}-{uuid.uuid4().hex[:6]}",
                product_id="prod-kettle",
                seller_id=rc.seller_id or "s",
                purchased_at=datetime(2025, 3, 14, tzinfo=UTC),
                units=units,
                unit_price=Decimal(price),
                currency=currency,
            )
            for i, (units, price) in enumerate(lines)
        ],
        recall=rc.content,
    )


def remedy_request(
    a: ev.AlertState,
    remedy: ev.RemedyType = "refund_on_destruction",
    *,
    customer_id: str | None = None,
) -> ev.RemedyRequested:
    return ev.RemedyRequested(
        request_id=str(uuid.uuid4()),
        alert_id=a.alert_id,
        customer_id=customer_id or a.customer_id,
        recall_id=a.recall_id,
        remedy=remedy,
        requested_at=datetime.now(UTC),
    )


@functools.cache
def photo_for(seed: str, size: tuple[int, int] = (320, 240), kind: str = "JPEG") -> bytes:
    """A photo that decodes, unlike any other seed's: coarse noise drawn from the seed, so that
    perceptual hashes of two seeds are far apart (the service flags near-identical photos across
    cases as duplicates)."""
    noise = hashlib.shake_256(seed.encode()).digest(16 * 12)
    image = Image.frombytes("L", (16, 12), noise).resize(size, Image.Resampling.NEAREST)
    out = io.BytesIO()
    image.convert("RGB").save(out, kind)
    return out.getvalue()


PHOTO = photo_for("the kit's photo")


# --------------------------------------------------------------------------- Kafka helpers


read_all = read_events  # (key, envelope, JSON body) of every record on a topic


# --------------------------------------------------------------------------- the running service


@dataclass
class Rls:
    client: httpx.AsyncClient
    settings: Settings
    producer: AIOKafkaProducer
    payments: CountingSandbox
    carrier: SandboxCarrier
    operator_key: str = ""
    app: object = None

    @property
    def op(self) -> dict[str, str]:
        return {"X-Api-Key": self.operator_key}

    async def issue_key(
        self, role: str = "seller", seller_id: str | None = None, *, wait: bool = True
    ) -> tuple[str, str]:
        """A key as recall-intake issues it on sellers.v1: (plaintext, key_id); waits until it
        works."""
        plaintext, key_id = generate_api_key(), str(uuid.uuid4())
        await self.publish(
            ev.ApiKeyIssued(
                key_id=key_id,
                key_hash=hash_api_key(plaintext, self.settings.api_key_pepper),
                role=role,
                seller_id=seller_id,
                issued_at=datetime.now(UTC),
            )
        )
        if wait:

            async def works() -> bool:
                return (
                    await self.client.get("/v1/cases?limit=1", headers={"X-Api-Key": plaintext})
                ).status_code == 200

            await eventually(works, timeout=15, interval=0.1)
        return plaintext, key_id

    def customer_token(self, customer_id: str) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {issue_customer_token(customer_id, self.settings.jwt_secret)}"
        }

    async def submit_proof(
        self, case_id: str, customer_id: str, photo: bytes | None = None
    ) -> httpx.Response:
        """Upload ``photo`` (default: the case's own, photo_for(case_id)) as the customer."""
        photo = photo_for(case_id) if photo is None else photo
        return await self.client.post(
            f"/v1/cases/{case_id}/proof",
            content=photo,
            headers={**self.customer_token(customer_id), "Content-Type": "image/jpeg"},
        )

    async def publish(self, event: ev.Event, *, event_id: str | None = None) -> str:
        env = envelope.wrap(event, source="/tests/refund-logistics", event_id=event_id)
        await self.producer.send_and_wait(
            f"{self.settings.topic_prefix}{event.topic}",
            value=env.data,
            key=event.partition_key().encode(),
            headers=env.headers(),
        )
        return env.id

    async def case(self, case_id: str) -> dict | None:
        r = await self.client.get(f"/v1/cases/{case_id}", headers=self.op)
        if r.status_code == 404:
            return None
        assert r.status_code == 200, r.text
        return r.json()

    async def wait_for_case(
        self, case_id: str, predicate: Callable[[dict], bool], timeout: float = 15.0
    ) -> dict:
        async def check() -> dict | None:
            c = await self.case(case_id)
            return c if c is not None and predicate(c) else None

        return await eventually(check, timeout=timeout, interval=0.1)

    async def transitions(self, case_id: str) -> list[tuple[bytes | None, Envelope, dict]]:
        """The remedy.case_transitioned.v1 events of a case on remedies.v1, in order."""
        return [
            (k, env, body)
            for k, env, body in await read_all(REMEDIES.physical(self.settings.topic_prefix))
            if env.type == "remedy.case_transitioned.v1" and body["case_id"] == case_id
        ]

    async def wait_for_transitions(
        self, case_id: str, count: int, timeout: float = 15.0
    ) -> list[tuple]:
        async def check() -> list | None:
            found = await self.transitions(case_id)
            assert len(found) <= count, [b["transition"] for _, _, b in found]
            return found if len(found) == count else None

        return await eventually(check, timeout=timeout, interval=0.2)

    async def sql(self, query: str, **params: object) -> list:
        engine = create_async_engine(self.settings.database_url)
        try:
            async with engine.connect() as conn:
                return list((await conn.execute(text(query), params)).all())
        finally:
            await engine.dispose()


def make_settings(url: str, prefix: str) -> Settings:
    return settings_under_test(
        Settings,
        url,
        prefix,
        refund_lease_s=5.0,
        refund_recovery_interval_s=0.2,
        metrics_refresh_interval_s=0,  # a scrape reads the state gauges afresh
    )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def rls() -> AsyncIterator[Rls]:
    """One running refund-logistics per test module. Modules using it run on the module's event
    loop: ``pytest.mark.asyncio(loop_scope="module")``."""
    payments = CountingSandbox()
    carrier = SandboxCarrier()
    async with own_topics() as prefix, migrated_database(MIGRATIONS, prefix="rls") as url:
        settings = make_settings(url, prefix)
        app = create_app(settings, payments=payments, carrier=carrier)
        async with running_app(app) as client, started_producer(settings) as producer:
            rls = Rls(
                client=client,
                settings=settings,
                producer=producer,
                payments=payments,
                carrier=carrier,
            )
            rls.app = app
            rls.operator_key, _ = await rls.issue_key("operator")
            yield rls


@pytest.fixture(scope="session")
def kit() -> object:
    """Builders for the test modules (which may not import each other or this conftest)."""

    class _Kit:
        recall = staticmethod(recall)
        alert = staticmethod(alert)
        remedy_request = staticmethod(remedy_request)
        new_customer = staticmethod(new_customer)
        photo = PHOTO
        photo_for = staticmethod(photo_for)
        published = staticmethod(lambda rc: ev.RecallPublished(recall=rc))
        raised = staticmethod(lambda a: ev.AlertRaised(alert=a))

    return _Kit()
