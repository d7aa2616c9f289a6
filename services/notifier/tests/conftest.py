"""Fixtures for the notifier's tests.

Integration tests run the real app (``create_app``) on a fresh migrated PostgreSQL database and a
unique Kafka topic prefix, fed by CloudEvents on ``customers.v1`` and ``alerts.v1``; mail goes to
the real local SMTP sink and is read back through its HTTP viewer. Every test uses its own customers
and uuid email addresses, so tests sharing a running service (and the sink) never see each other's
mail.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import os
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaProducer

import notifier
from notifier.app import create_app
from notifier.clock import Clock
from notifier.sender import FaultHook
from notifier.settings import Settings
from notifier.smtp_pool import MailTransport
from recall_shared import envelope
from recall_shared import events as ev
from recall_shared.auth import generate_api_key, hash_api_key
from recall_shared.testing import (
    eventually,
    make_alert,
    migrated_database,
    new_customer,
    own_topics,
    read_events,
    running_app,
    settings_under_test,
    started_producer,
    withdrawn,
)
from recall_shared.topics import TopicSpec

MIGRATIONS = Path(notifier.__file__).parent / "migrations"
SINK_VIEWER = os.environ.get("SMTP_SINK_VIEWER", "http://127.0.0.1:8025")
PORTAL = "https://shop.example/account"


# --------------------------------------------------------------------------- event builders


def new_email(tag: str = "buyer") -> str:
    return f"{tag}-{uuid.uuid4().hex}@notifier-tests.example"


def customer(
    customer_id: str,
    *,
    email_: str | None = None,
    safety_email: str | None = None,
    name: str = "Alex Doe",
    locale: str = "en",
) -> ev.CustomerUpdated:
    return ev.CustomerUpdated(
        customer_id=customer_id, name=name, email=email_, safety_email=safety_email, locale=locale
    )


# --------------------------------------------------------------------------- the SMTP sink


@dataclass
class Mail:
    id: str
    subject: str
    rcpt_to: list[str]
    received_at: float
    message: EmailMessage

    @property
    def text(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        return part.get_content() if part is not None else ""

    @property
    def html(self) -> str:
        part = self.message.get_body(preferencelist=("html",))
        return part.get_content() if part is not None else ""


async def mails_to(address: str) -> list[Mail]:
    """Every message the sink received for ``address`` (envelope recipient), oldest first."""
    async with httpx.AsyncClient(base_url=SINK_VIEWER, timeout=10) as client:
        r = await client.get("/messages", params={"rcpt": address})
        r.raise_for_status()
        out = []
        for m in r.json():
            if address.lower() not in [x.lower() for x in m["rcpt_to"]]:
                continue  # a substring match on another address
            raw = await client.get(f"/messages/{m['id']}")
            raw.raise_for_status()
            msg = email.message_from_bytes(raw.content, policy=email.policy.default)
            out.append(
                Mail(
                    id=m["id"],
                    subject=str(msg["Subject"]),
                    rcpt_to=m["rcpt_to"],
                    received_at=m["received_at"],
                    message=msg,
                )
            )
    out.sort(key=lambda m: (m.received_at, m.id))
    return out


async def raw_mail(mail_id: str) -> bytes:
    async with httpx.AsyncClient(base_url=SINK_VIEWER, timeout=10) as client:
        r = await client.get(f"/messages/{mail_id}")
        r.raise_for_status()
        return r.content


async def wait_for_mails(address: str, count: int, timeout: float = 15.0) -> list[Mail]:
    async def check() -> list[Mail] | None:
        found = await mails_to(address)
        assert len(found) <= count, (
            f"{len(found)} mails to {address}, expected {count}: {[m.subject for m in found]}"
        )
        return found if len(found) == count else None

    return await eventually(check, timeout=timeout, interval=0.2)


# --------------------------------------------------------------------------- Kafka helpers


read_all = read_events  # (key, envelope, JSON body) of every record on a topic


# --------------------------------------------------------------------------- the running service


@dataclass
class Notifier:
    client: httpx.AsyncClient
    settings: Settings
    producer: AIOKafkaProducer
    app: object = None

    def topic(self, spec: TopicSpec) -> str:
        return spec.physical(self.settings.topic_prefix)

    async def publish(self, event: ev.Event, *, event_id: str | None = None) -> str:
        env = envelope.wrap(event, source="/tests/notifier", event_id=event_id)
        await self.producer.send_and_wait(
            f"{self.settings.topic_prefix}{event.topic}",
            value=env.data,
            key=event.partition_key().encode(),
            headers=env.headers(),
        )
        return env.id

    async def issue_key(self, role: str, seller_id: str | None = None) -> str:
        """A key as recall-intake issues it on sellers.v1 (its plaintext), once it works here."""
        plaintext = generate_api_key()
        await self.publish(
            ev.ApiKeyIssued(
                key_id=str(uuid.uuid4()),
                key_hash=hash_api_key(plaintext, self.settings.api_key_pepper),
                role=role,
                seller_id=seller_id,
                issued_at=datetime.now(UTC),
            )
        )

        async def known() -> bool:
            r = await self.client.get(
                f"/v1/alerts/{uuid.uuid4()}/notices", headers={"X-Api-Key": plaintext}
            )
            return r.status_code not in (401, 409)  # 409: not_known_yet

        await eventually(known, timeout=15, interval=0.1)
        return plaintext

    async def notices(self, alert_id: str) -> list[dict]:
        r = await self.client.get(f"/v1/alerts/{alert_id}/notices")
        assert r.status_code == 200, r.text
        return r.json()

    async def wait_for_notices(
        self, alert_id: str, predicate: Callable[[list[dict]], bool], timeout: float = 15.0
    ) -> list[dict]:
        async def check() -> list[dict] | None:
            ns = await self.notices(alert_id)
            return ns if predicate(ns) else None

        return await eventually(check, timeout=timeout, interval=0.1)


def make_settings(url: str, prefix: str, **overrides: Any) -> Settings:
    return settings_under_test(
        Settings,
        url,
        prefix,
        **{
            "sender_poll_s": 0.2,
            "send_backoff_initial_s": 0.2,
            "send_max_attempts": 3,
            "customer_portal_url": PORTAL,
            **overrides,
        },
    )


@contextlib.asynccontextmanager
async def _app_on(
    url: str,
    prefix: str,
    transport: MailTransport | None,
    clock: Clock | None,
    fault: FaultHook | None,
    overrides: dict,
) -> AsyncIterator[Notifier]:
    sms = overrides.pop("sms", None)  # an SmsProvider (e.g. TwilioSms on the sandbox)
    settings = make_settings(url, prefix, **overrides)
    app = create_app(settings, transport=transport, clock=clock, fault=fault, sms=sms)
    async with running_app(app) as client, started_producer(settings) as producer:
        n = Notifier(client=client, settings=settings, producer=producer, app=app)
        # The read API takes an operator key: one issued on sellers.v1 as recall-intake would, sent
        # by default on every request of the client.
        client.headers["X-Api-Key"] = await n.issue_key("operator")
        yield n


@contextlib.asynccontextmanager
async def started_notifier(
    transport: MailTransport | None = None,
    *,
    clock: Clock | None = None,
    fault: FaultHook | None = None,
    **overrides: object,
) -> AsyncIterator[Notifier]:
    async with (
        own_topics() as prefix,
        migrated_database(MIGRATIONS, prefix="notifier") as url,
        _app_on(url, prefix, transport, clock, fault, overrides) as n,
    ):
        yield n


@contextlib.asynccontextmanager
async def restartable_notifier(
    **overrides: object,
) -> AsyncIterator[Callable[..., contextlib.AbstractAsyncContextManager[Notifier]]]:
    """One database and topic prefix kept across several runs of the service: ``async with start()
    as n`` starts a fresh app (a restart) on the same state."""
    async with own_topics() as prefix, migrated_database(MIGRATIONS, prefix="notifier") as url:

        def start(
            transport: MailTransport | None = None,
            *,
            clock: Clock | None = None,
            fault: FaultHook | None = None,
            **more: object,
        ) -> contextlib.AbstractAsyncContextManager[Notifier]:
            return _app_on(url, prefix, transport, clock, fault, {**overrides, **more})

        yield start


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def svc() -> AsyncIterator[Notifier]:
    """One running notifier per test module (mail to the real SMTP sink). Modules using it run on
    the module's event loop: ``pytest.mark.asyncio(loop_scope="module")``."""
    async with started_notifier() as n:
        yield n


@pytest.fixture(scope="session")
def start_notifier() -> Callable[..., contextlib.AbstractAsyncContextManager[Notifier]]:
    """Start a notifier of one's own, e.g. with a different mail transport."""
    return started_notifier


@pytest.fixture(scope="session")
def restart_notifier() -> Callable[..., contextlib.AbstractAsyncContextManager]:
    """A database and topic prefix for several consecutive runs of the service (restarts)."""
    return restartable_notifier


@pytest.fixture(scope="session")
def kit() -> object:
    """Builders and helpers for the test modules (which may not import each other or this
    conftest)."""

    class _Kit:
        alert = staticmethod(make_alert)
        raised = staticmethod(lambda a: ev.AlertRaised(alert=a))
        updated = staticmethod(lambda a: ev.AlertUpdated(alert=a))
        withdrawn = staticmethod(withdrawn)
        customer = staticmethod(customer)
        new_customer = staticmethod(new_customer)
        new_email = staticmethod(new_email)
        mails_to = staticmethod(mails_to)
        wait_for_mails = staticmethod(wait_for_mails)
        read_all = staticmethod(read_all)
        portal = PORTAL
        migrations = MIGRATIONS
        raw_mail = staticmethod(raw_mail)

    return _Kit()


@contextlib.asynccontextmanager
async def _twilio_sandbox() -> AsyncIterator[tuple[Any, dict[str, Any]]]:
    """The SMS sandbox (Twilio's Messages API contract) and the notifier settings that send through
    it with the real Twilio adapter."""
    from notifier.sms import TwilioSms
    from notifier.sms_sandbox import SandboxSms, create_sms_sandbox_app

    sandbox = SandboxSms()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_sms_sandbox_app(sandbox)),
        base_url="http://sms-sandbox",
    ) as client:
        sms = TwilioSms(
            account_sid=sandbox.account_sid,
            auth_token=sandbox.auth_token,
            from_="+15005550006",
            base_url="http://sms-sandbox",
            client=client,
        )
        yield (
            sandbox,
            {
                "sms": sms,
                "sms_provider": "twilio",
                "twilio_account_sid": sandbox.account_sid,
                "twilio_auth_token": sandbox.auth_token,
                "twilio_from": "+15005550006",
                "public_url": "http://testserver",
                "sms_poll_s": 0.2,
            },
        )


@pytest.fixture(scope="session")
def twilio_sandbox() -> Callable[..., contextlib.AbstractAsyncContextManager[Any]]:
    """``async with twilio_sandbox() as (sandbox, settings)``: see _twilio_sandbox."""
    return _twilio_sandbox
