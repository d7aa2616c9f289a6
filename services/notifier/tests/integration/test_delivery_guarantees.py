"""Exactly once, as far as SMTP allows: crashes of the sender at each step, with the real SMTP sink
and a real PostgreSQL; redelivery and restarts of the whole service with Kafka.

A crash is simulated by cancelling the sender task at a fault-injection point (nothing after that
point runs, as if the process died); the recovery is a fresh sender on the same database once the
lease expired.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notifier import handlers
from notifier.clock import FakeClock
from notifier.sender import FaultHook, NoticeSender
from notifier.settings import Settings
from notifier.smtp_pool import SmtpTransport
from recall_shared import events as ev
from recall_shared.db import create_engine, create_session_factory
from recall_shared.envelope import wrap
from recall_shared.metrics import Metrics
from recall_shared.outbox import Outbox
from recall_shared.testing import eventually, migrated_database

pytestmark = pytest.mark.integration

LEASE_S = 0.6


class Crash:
    """Fault hook: at ``step`` for the first notice reaching it, park forever (the test then kills
    the task)."""

    def __init__(self, step: str) -> None:
        self.step = step
        self.reached = asyncio.Event()
        self.notice_id: str | None = None

    async def __call__(self, step: str, notice_id: str) -> None:
        if step == self.step and not self.reached.is_set():
            self.notice_id = notice_id
            self.reached.set()
            await asyncio.Future()  # never returns: the task is cancelled here


@dataclass
class Env:
    settings: Settings
    sessions: async_sessionmaker[AsyncSession]

    def sender(self, fault: FaultHook | None = None) -> NoticeSender:
        outbox = Outbox(source="/tests/notifier", service="notifier", topic_prefix="")
        return NoticeSender(
            settings=self.settings,
            session_factory=self.sessions,
            outbox=outbox,
            metrics=Metrics("notifier"),
            transport=SmtpTransport(self.settings),
            clock=FakeClock(),
            fault=fault,
        )

    async def apply(self, event: ev.Event) -> None:
        handler = handlers.HANDLERS[type(event)]
        async with self.sessions() as session, session.begin():
            await handler(session, event, wrap(event, source="/tests"))

    async def notice(self, alert_id: str) -> dict:
        async with self.sessions() as session:
            row = (
                (
                    await session.execute(
                        text("SELECT * FROM notices WHERE alert_id = :a"), {"a": alert_id}
                    )
                )
                .mappings()
                .one()
            )
        return dict(row)

    async def outbox_events(self, notice_id: str) -> list[str]:
        async with self.sessions() as session:
            return list(
                (
                    await session.execute(
                        text("SELECT event_type FROM outbox WHERE event_id LIKE :p ORDER BY id"),
                        {"p": f"notice:{notice_id}:%"},
                    )
                ).scalars()
            )


@contextlib.asynccontextmanager
async def environment(kit, **overrides: Any) -> AsyncIterator[Env]:
    async with migrated_database(kit.migrations, prefix="notifier") as url:
        settings = Settings(
            database_url=url,
            environment="test",
            log_json=False,
            log_level="WARNING",
            send_lease_s=LEASE_S,
            customer_portal_url=kit.portal,
            **overrides,
        )
        engine = create_engine(settings)
        try:
            yield Env(settings, create_session_factory(engine))
        finally:
            await engine.dispose()


async def close_transport(sender: NoticeSender) -> None:
    transport = sender.transport
    assert isinstance(transport, SmtpTransport)  # as Env.sender made it
    await transport.close()


async def crash_at(env: Env, step: str) -> str:
    """Run a sender until it reaches ``step`` for a notice, then kill it there. Returns the notice
    id."""
    crash = Crash(step)
    sender = env.sender(fault=crash)
    task = asyncio.create_task(sender.send_due())
    await asyncio.wait_for(crash.reached.wait(), timeout=10)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await close_transport(sender)  # the dead process's sockets close
    assert crash.notice_id is not None
    return crash.notice_id


async def recover(env: Env) -> NoticeSender:
    """A fresh sender (the restarted process) once the dead one's lease has expired."""
    sender = env.sender()
    await asyncio.sleep(LEASE_S + 0.2)
    await sender.send_due()
    await close_transport(sender)
    return sender


async def queued_alert(env: Env, kit) -> tuple[ev.AlertState, str]:
    cid, addr = kit.new_customer(), kit.new_email()
    alert = kit.alert(cid, title=f"Crash kettle {uuid.uuid4().hex[:6]}")
    await env.apply(kit.customer(cid, email_=addr))
    await env.apply(kit.raised(alert))
    return alert, addr


async def test_crash_before_the_send_is_sent_exactly_once_after_recovery(kit) -> None:
    async with environment(kit) as env:
        alert, addr = await queued_alert(env, kit)
        nid = await crash_at(env, "claimed")
        assert (await env.notice(alert.alert_id))["status"] == "sending"
        assert await env.sender().send_due() == 0, "nothing is taken over while the lease holds"
        assert await kit.mails_to(addr) == []

        await recover(env)
        (mail,) = await kit.wait_for_mails(addr, 1)
        assert mail.message["X-Recall-Notice-Id"] == nid
        n = await env.notice(alert.alert_id)
        assert n["status"] == "sent" and n["attempts"] == 2
        assert await env.outbox_events(nid) == ["notification.sent.v1"]
        assert await env.sender().send_due() == 0  # yet another restart: nothing more to send
        assert len(await kit.mails_to(addr)) == 1


async def test_crash_after_the_send_before_the_record_resends_with_the_same_identity(kit) -> None:
    async with environment(kit) as env:  # at_least_once is the default
        assert env.settings.delivery_guarantee == "at_least_once"
        alert, addr = await queued_alert(env, kit)
        nid = await crash_at(env, "sent")
        assert len(await kit.mails_to(addr)) == 1  # it reached the relay ...
        n = await env.notice(alert.alert_id)
        assert (
            n["status"] == "sending" and n["message_id"] == f"<{nid}@recall-alerts.notices>"
        )  # ... not recorded
        assert await env.outbox_events(nid) == []

        await recover(env)
        first, second = await kit.wait_for_mails(addr, 2)
        # The one duplicate SMTP allows: identical Message-ID and notice id, so it can be
        # recognised.
        assert (
            first.message["Message-ID"]
            == second.message["Message-ID"]
            == f"<{nid}@recall-alerts.notices>"
        )
        assert first.message["X-Recall-Notice-Id"] == second.message["X-Recall-Notice-Id"] == nid
        assert first.subject == second.subject
        n = await env.notice(alert.alert_id)
        assert n["status"] == "sent" and n["attempts"] == 2 and n["resent_in_doubt"] == 1
        assert await env.outbox_events(nid) == ["notification.sent.v1"], "one sent event, not two"
        assert await env.sender().send_due() == 0
        assert len(await kit.mails_to(addr)) == 2


async def test_at_most_once_never_resends_an_in_doubt_notice(kit) -> None:
    async with environment(kit, delivery_guarantee="at_most_once") as env:
        alert, addr = await queued_alert(env, kit)
        nid = await crash_at(env, "sent")
        await kit.wait_for_mails(addr, 1)
        await recover(env)
        n = await env.notice(alert.alert_id)
        assert n["status"] == "in_doubt" and "in doubt" in n["last_error"]
        assert await env.outbox_events(nid) == ["notification.failed.v1"]
        assert await env.sender().send_due() == 0
        assert len(await kit.mails_to(addr)) == 1, "never a duplicate"


async def test_at_most_once_crash_before_marking_is_not_in_doubt_and_is_sent_once(kit) -> None:
    async with environment(kit, delivery_guarantee="at_most_once") as env:
        alert, addr = await queued_alert(env, kit)
        nid = await crash_at(env, "claimed")  # leased, but no SMTP transaction began
        assert (await env.notice(alert.alert_id))["status"] == "pending"
        await recover(env)
        (mail,) = await kit.wait_for_mails(addr, 1)
        assert mail.message["X-Recall-Notice-Id"] == nid
        n = await env.notice(alert.alert_id)
        assert n["status"] == "sent" and n["resent_in_doubt"] == 0
        assert await env.outbox_events(nid) == ["notification.sent.v1"]


async def test_in_doubt_notice_of_a_withdrawn_alert_is_not_resent(kit) -> None:
    async with environment(kit) as env:
        alert, addr = await queued_alert(env, kit)
        await crash_at(env, "sent")
        await kit.wait_for_mails(addr, 1)
        await env.apply(kit.withdrawn(alert))  # while the initial notice is in doubt
        await recover(env)
        mails = await kit.wait_for_mails(addr, 2)
        assert mails[-1].subject.endswith("(your purchase is not affected)"), (
            "told of the withdrawal, not re-sent"
        )
        async with env.sessions() as session:
            rows: dict[str, str] = dict(
                (
                    await session.execute(
                        text("SELECT kind, status FROM notices WHERE alert_id = :a"),
                        {"a": alert.alert_id},
                    )
                ).all()
            )
        assert rows == {"initial": "cancelled", "withdrawal": "sent"}


async def test_redelivery_and_restarts_never_send_twice(restart_notifier, kit) -> None:
    cid, addr = kit.new_customer(), kit.new_email()
    alert = kit.alert(cid, title=f"Restart kettle {uuid.uuid4().hex[:6]}")
    ce_id = str(uuid.uuid4())
    async with restart_notifier() as start:
        async with start() as svc:
            await svc.publish(kit.customer(cid, email_=addr))
            await svc.publish(kit.raised(alert), event_id=ce_id)
            await kit.wait_for_mails(addr, 1)
            await svc.wait_for_notices(alert.alert_id, lambda ns: ns and ns[0]["status"] == "sent")
        async with start() as svc:  # restarted: same database, same consumer group
            await svc.publish(
                kit.raised(alert), event_id=ce_id
            )  # redelivered (same ce_id): the inbox drops it
            await svc.publish(
                kit.raised(alert)
            )  # re-published (new ce_id): the unique key drops it
            marker = kit.alert(cid, title="Restart marker")
            await svc.publish(kit.raised(marker))
            await eventually(lambda: _has_subject(kit, addr, "Restart marker"), timeout=20)
            (notice,) = await svc.notices(alert.alert_id)
            assert notice["status"] == "sent" and notice["attempts"] == 1
        await asyncio.sleep(0.3)
        subjects = sorted(m.subject for m in await kit.mails_to(addr))
        assert subjects == sorted(
            [
                f"Product safety recall: {alert.recall.title}",
                "Product safety recall: Restart marker",
            ]
        )


async def _has_subject(kit, addr: str, needle: str) -> bool:
    return any(needle in m.subject for m in await kit.mails_to(addr))
