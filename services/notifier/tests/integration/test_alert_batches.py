"""The bulk form of the alert consumer (``handle_many`` of alert.raised.v1 / alert.updated.v1)
leaves PostgreSQL exactly as the one-event handlers applied one by one: the same alerts, the same
notices with the same statuses, the sender woken in the same cases; for the whole run at once, for
any split of it into contiguous slices (the runner bisects a failing batch), and one event at a time
through ``BatchHandler.__call__`` (the one-event runner)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notifier import handlers
from notifier.handlers import SENDER_CHANNEL
from notifier.settings import Settings
from recall_shared import events as ev
from recall_shared.db import asyncpg_dsn, create_engine, create_session_factory
from recall_shared.envelope import wrap
from recall_shared.handlers import BatchHandler, Delivery, HandlerMap
from recall_shared.testing import migrated_database

pytestmark = pytest.mark.integration

ALERT_COLUMNS = "alert_id, customer_id, alert_version, status, state"
NOTICE_COLUMNS = (
    "notice_id, alert_id, customer_id, recipient_customer_id, recipient_role, kind, "
    "alert_version, reminder_no, status, attempts, last_error, message_id, sent_at, resent_in_doubt"
)


@dataclass
class Db:
    sessions: async_sessionmaker[AsyncSession]
    dsn: str

    async def rows(self) -> tuple[list[dict], list[dict]]:
        async with self.sessions() as session:
            alerts = await session.execute(
                text(f"SELECT {ALERT_COLUMNS} FROM alerts ORDER BY alert_id")
            )
            notices = await session.execute(
                text(f"SELECT {NOTICE_COLUMNS} FROM notices ORDER BY notice_id")
            )
            return [dict(r) for r in alerts.mappings()], [dict(r) for r in notices.mappings()]

    async def reset(self) -> None:
        async with self.sessions() as session, session.begin():
            await session.execute(text("TRUNCATE alerts, notices, contacts"))


@contextlib.asynccontextmanager
async def database(kit) -> AsyncIterator[Db]:
    async with migrated_database(kit.migrations, prefix="notifier") as url:
        engine = create_engine(
            Settings(database_url=url, environment="test", log_json=False, log_level="WARNING")
        )
        try:
            yield Db(create_session_factory(engine), asyncpg_dsn(url))
        finally:
            await engine.dispose()


async def woken(db: Db, apply) -> bool:
    """Run ``apply`` (one transaction) and say whether it woke the sender."""
    listener = await asyncpg.connect(db.dsn)
    heard: list[str] = []
    try:
        await listener.add_listener(SENDER_CHANNEL, lambda *args: heard.append(args[2]))
        await apply()
        await listener.execute("SELECT 1")  # a round trip: a pending notification is read ...
        await asyncio.sleep(0.05)  # ... and its callback run
    finally:
        await listener.close()
    return bool(heard)


class Scenario:
    """Customers with every kind of contact, and a run of alert events touching each rule."""

    def __init__(self, kit) -> None:
        self.kit = kit
        new = kit.new_customer
        self.mail, self.safety, self.no_address, self.no_contact = new(), new(), new(), new()
        self.admin_mail, self.admin_no_contact = new(), new()

    def contacts(self) -> list[ev.CustomerUpdated]:
        k = self.kit
        return [
            k.customer(self.mail, email_=k.new_email()),
            k.customer(self.safety, email_=None, safety_email=k.new_email("safety")),
            k.customer(self.no_address, email_=None),
            k.customer(self.admin_mail, email_=k.new_email("admin")),
        ]

    def alert(self, customer: str, alert_id: str, version: int, **kw: object) -> ev.AlertState:
        return self.kit.alert(customer, alert_id=alert_id, alert_version=version, **kw)

    def setup(self) -> tuple[list[ev.Event], list[ev.Event]]:
        """(applied beforehand one by one, the run under test)."""
        a, b, c, d, e, f, p = (str(uuid.uuid4()) for _ in range(7))
        raised, updated = ev.AlertRaised, ev.AlertUpdated
        before: list[ev.Event] = [*self.contacts(), raised(alert=self.alert(self.mail, p, 3))]
        run: list[ev.Event] = [
            raised(alert=self.alert(self.mail, a, 1)),
            raised(alert=self.alert(self.mail, a, 1)),  # a repeat inside the run
            updated(alert=self.alert(self.mail, a, 1, title="Retitled")),  # same version: content
            # same version, a remedy added: a material amendment (issue 14), told again
            updated(alert=self.alert(self.mail, a, 1, remedies=("replacement", "repair"))),
            updated(alert=self.alert(self.mail, a, 2)),  # the scope changed: an update notice
            raised(alert=self.alert(self.mail, a, 1)),  # older than held: ignored
            raised(alert=self.alert(self.no_contact, b, 1, admin_id=self.admin_mail)),
            raised(alert=self.alert(self.safety, c, 1, admin_id=self.safety)),  # admin = buyer
            raised(alert=self.alert(self.no_address, d, 1)),
            updated(alert=self.alert(self.mail, e, 2)),  # an update of an alert never seen
            raised(alert=self.alert(self.mail, p, 2)),  # older than the version held before
            updated(alert=self.alert(self.mail, p, 4)),
            raised(alert=self.alert(self.mail, f, 1, admin_id=self.admin_no_contact)),
            raised(alert=self.alert(self.mail, f, 1, admin_id=self.admin_no_contact)),
        ]
        return before, run


async def one_by_one(db: Db, events: Sequence[ev.Event]) -> None:
    """The reference: each event through its one-event handler."""
    singles: HandlerMap = {
        ev.AlertRaised: handlers.on_alert_raised,
        ev.AlertUpdated: handlers.on_alert_updated,
    }
    async with db.sessions() as session, session.begin():
        for event in events:
            handler = singles.get(type(event)) or handlers.HANDLERS[type(event)]
            await handler(session, event, wrap(event, source="/tests"))


async def in_slices(db: Db, events: Sequence[ev.Event], cuts: Sequence[int]) -> None:
    """The run as the batched runner would hand it over: ``handle_many`` per slice, one
    transaction for all."""
    entry = handlers.HANDLERS[ev.AlertRaised]
    assert isinstance(entry, BatchHandler) and handlers.HANDLERS[ev.AlertUpdated] is entry
    bounds = [0, *cuts, len(events)]
    async with db.sessions() as session, session.begin():
        for lo, hi in itertools.pairwise(bounds):
            await entry.handle_many(
                session, [Delivery(e, wrap(e, source="/tests")) for e in events[lo:hi]]
            )


async def test_handle_many_equals_the_one_event_handlers_for_any_slicing(kit) -> None:
    scenario = Scenario(kit)
    before, run = scenario.setup()
    async with database(kit) as reference, database(kit) as batched:
        await one_by_one(reference, before)
        reference_woken = await woken(reference, lambda: one_by_one(reference, run))
        expected = await reference.rows()
        alerts, notices = expected
        # The scenario does reach every rule.
        statuses = {(n["recipient_customer_id"], n["kind"], n["alert_version"]): n for n in notices}
        assert {n["status"] for n in notices} == {"pending", "waiting_contact"}
        assert statuses[(scenario.admin_mail, "initial", 1)]["recipient_role"] == "account_admin"
        assert statuses[(scenario.safety, "initial", 1)]["status"] == "pending"
        assert statuses[(scenario.no_address, "initial", 1)]["status"] == "waiting_contact"
        assert statuses[(scenario.admin_no_contact, "initial", 1)]["status"] == "waiting_contact"
        assert statuses[(scenario.mail, "amendment", 1)]["reminder_no"] == 1  # recall version
        assert len(notices) == 12 and len(alerts) == 7
        assert reference_woken

        for cuts in ([], [1], [2, 3], [5, 9], list(range(1, len(run)))):
            await batched.reset()
            await one_by_one(batched, before)
            assert await woken(batched, lambda c=cuts: in_slices(batched, run, c)), cuts
            assert await batched.rows() == expected, f"cut at {cuts}"


async def test_the_one_event_runner_calls_the_batch_handler_one_delivery_at_a_time(kit) -> None:
    before, run = Scenario(kit).setup()
    async with database(kit) as reference, database(kit) as single:
        await one_by_one(reference, before + run)
        for event in before + run:  # each through HANDLERS, as the one-event runner does
            async with single.sessions() as session, session.begin():
                await handlers.HANDLERS[type(event)](session, event, wrap(event, source="/t"))
        assert await single.rows() == await reference.rows()


async def test_the_sender_is_woken_only_when_a_notice_can_be_sent(kit) -> None:
    scenario = Scenario(kit)
    k = kit
    only_waiting = [
        ev.AlertRaised(alert=scenario.alert(scenario.no_contact, str(uuid.uuid4()), 1)),
        ev.AlertRaised(alert=scenario.alert(scenario.no_address, str(uuid.uuid4()), 1)),
    ]
    async with database(kit) as db:
        await one_by_one(db, scenario.contacts())
        assert not await woken(db, lambda: in_slices(db, only_waiting, []))
        assert not await woken(db, lambda: in_slices(db, only_waiting, [])), "a repeat: nothing"
        sendable = [ev.AlertRaised(alert=k.alert(scenario.mail))]
        assert await woken(db, lambda: in_slices(db, only_waiting + sendable, []))


async def test_a_contact_arriving_while_its_notice_is_queued_is_never_missed(kit) -> None:
    """The alert's transaction finds no contact and queues the notice as waiting; the contact's
    transaction runs meanwhile (another partition, perhaps another instance). Without the
    recipient lock the contact update sees no waiting notice yet, the notice commits as waiting,
    and nothing ever releases it. With it, the contact waits for the alert's commit, then
    releases the notice."""
    async with database(kit) as db:
        buyer = kit.new_customer()
        raised = ev.AlertRaised(alert=kit.alert(buyer, alert_id=str(uuid.uuid4())))
        contact = kit.customer(buyer, email_=kit.new_email())
        async with db.sessions() as first, first.begin():
            await handlers.on_alert_events.handle_many(
                first, [Delivery(raised, wrap(raised, source="/tests"))]
            )

            async def contact_arrives() -> None:
                async with db.sessions() as second, second.begin():
                    await handlers.on_customer_updated(
                        second, contact, wrap(contact, source="/tests")
                    )

            arriving = asyncio.create_task(contact_arrives())
            await asyncio.sleep(0.5)
            assert not arriving.done()  # it waits for the queued notice's transaction
        await asyncio.wait_for(arriving, timeout=10)
        _, notices = await db.rows()
        assert [n["status"] for n in notices] == ["pending"]
