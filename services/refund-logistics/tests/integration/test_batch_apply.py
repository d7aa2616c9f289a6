"""The read models' batch forms leave the rows and cases the one-event handlers leave, in order.

Two migrated databases side by side, each with its own :class:`Cases`: one is fed as the batching
runner feeds it (one transaction per batch; a run of consecutive deliveries registered to the same
BatchHandler goes to its handle_many in one call; other handlers one by one in the same session),
the other one event per transaction through the one-event handlers. Remedy requests are mixed in,
so cases that wait for their alert go on inside a batch exactly as they would one by one.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

import refund_logistics
from recall_shared import events as ev
from recall_shared import sample_events
from recall_shared.handlers import BatchHandler, Delivery, HandlerMap
from recall_shared.outbox import Outbox
from recall_shared.sample_events import NumberedAlerts
from recall_shared.testing import migrated_database
from refund_logistics.carrier import SandboxCarrier
from refund_logistics.handlers import Cases, case_id_for
from refund_logistics.payments import SandboxPaymentProvider

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

MIGRATIONS = Path(refund_logistics.__file__).parent / "migrations"

# Fixed recalls, alerts, customers, requests and notices, so that random sequences collide on them.
ENROLLED, NOT_ENROLLED = "rc-enrolled", "rc-not-enrolled"
ALERT_IDS = [str(uuid.UUID(int=i + 1)) for i in range(3)]
CUSTOMER_OF = {a: f"cust-{i}" for i, a in enumerate(ALERT_IDS)}
RECALL_OF = {ALERT_IDS[0]: ENROLLED, ALERT_IDS[1]: ENROLLED, ALERT_IDS[2]: NOT_ENROLLED}
REQUEST_IDS = [str(uuid.UUID(int=100 + i)) for i in range(4)]
NOTICE_IDS = [str(uuid.UUID(int=200 + i)) for i in range(3)]
T0 = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
ALERTS = NumberedAlerts(ALERT_IDS, CUSTOMER_OF, RECALL_OF, NOTICE_IDS, T0)
withdrawn, closed, notice = ALERTS.withdrawn, ALERTS.closed, ALERTS.notice


@dataclass
class Twin:
    sf: async_sessionmaker[AsyncSession]
    cases: Cases

    def one_event_handlers(self) -> dict[type[ev.Event], Any]:
        c = self.cases.read_models
        return {
            ev.RecallPublished: c.on_recall,
            ev.AlertRaised: c.on_alert,
            ev.AlertUpdated: c.on_alert,
            ev.AlertWithdrawn: c.on_alert_withdrawn,
            ev.AlertClosed: c.on_alert_closed,
            ev.NoticeSent: c.on_notice,
            ev.NoticeFailed: c.on_notice,
            ev.NoticeDelivered: c.on_notice_reported,
            ev.NoticeBounced: c.on_notice_reported,
            ev.RemedyRequested: self.cases.lifecycle.on_remedy_requested,
        }


@dataclass
class Twins:
    batched: Twin
    one_by_one: Twin


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def twins() -> AsyncIterator[Twins]:
    async with (
        migrated_database(MIGRATIONS, prefix="rls_batch") as url_a,
        migrated_database(MIGRATIONS, prefix="rls_single") as url_b,
    ):
        engines = [create_async_engine(url_a), create_async_engine(url_b)]
        try:
            made = []
            for engine in engines:
                sf = async_sessionmaker(engine, expire_on_commit=False)
                cases = Cases(
                    Outbox(source="/tests/refund-logistics", service="refund-logistics"),
                    SandboxPaymentProvider(),
                    Decimal("1.50"),
                    carrier=SandboxCarrier(),
                    session_factory=sf,
                )
                made.append(Twin(sf, cases))
            yield Twins(*made)
        finally:
            for engine in engines:
                await engine.dispose()


# --------------------------------------------------------------------------- feeding the twins


async def apply_as_batch(twin: Twin, batch: Sequence[Delivery[Any]]) -> None:
    """As the batching runner applies a batch: one transaction, runs of one entry together."""
    registered: HandlerMap = twin.cases.handlers()
    async with twin.sf() as session, session.begin():
        for entry, run in itertools.groupby(batch, key=lambda d: registered[type(d.event)]):
            if isinstance(entry, BatchHandler):
                await entry.handle_many(session, list(run))
            else:
                for d in run:
                    await entry(session, d.event, d.envelope)


async def apply_one_by_one(twin: Twin, batch: Sequence[Delivery[Any]]) -> None:
    one_event = twin.one_event_handlers()
    for d in batch:
        async with twin.sf() as session, session.begin():
            await one_event[type(d.event)](session, d.event, d.envelope)


async def reset(twin: Twin) -> None:
    async with twin.sf() as session, session.begin():
        await session.execute(text("TRUNCATE recalls, alerts, notices, cases, outbox CASCADE"))


async def snapshot(twin: Twin) -> dict[str, list[tuple[Any, ...]]]:
    queries = {
        "alerts": "SELECT alert_id, customer_id, recall_id, alert_version, status, lines, units "
        "FROM alerts ORDER BY alert_id",
        "notices": "SELECT notice_id, alert_id, customer_id, recall_id, kind, channel, status, at "
        "FROM notices ORDER BY notice_id",
        "cases": "SELECT case_id, state, waiting_for, units, seller_id, reason FROM cases "
        "ORDER BY case_id",
        "transitions": "SELECT case_id, transition, from_state, to_state FROM case_transitions "
        "ORDER BY case_id, id",
        "outbox": "SELECT event_id, event_type, key FROM outbox ORDER BY event_id",
    }
    async with twin.sf() as session:
        return {
            table: [tuple(r) for r in (await session.execute(text(q))).all()]
            for table, q in queries.items()
        }


async def both_ways(twins: Twins, *batches: Sequence[ev.Event]) -> dict[str, list[tuple[Any, ...]]]:
    """Applies the batches both ways from the same start (the two recalls known); asserts the same
    rows; returns them."""
    start = [published(ENROLLED, enrolled=True), published(NOT_ENROLLED, enrolled=False)]
    for twin in (twins.batched, twins.one_by_one):
        await reset(twin)
        await apply_one_by_one(twin, delivered(start))
    for batch in batches:
        deliveries = delivered(batch)  # the same envelopes both ways (their ids are causations)
        await apply_as_batch(twins.batched, deliveries)
        await apply_one_by_one(twins.one_by_one, deliveries)
    rows = await snapshot(twins.batched)
    assert rows == await snapshot(twins.one_by_one)
    return rows


def delivered(events: Sequence[ev.Event]) -> list[Delivery[Any]]:
    return sample_events.delivered(events, source="/tests/refund-logistics/batch")


# --------------------------------------------------------------------------- event builders


def published(recall_id: str, *, enrolled: bool) -> ev.RecallPublished:
    return ev.RecallPublished(
        recall=ev.RecallSnapshot(
            recall_id=recall_id,
            version=1,
            seller_id="seller-1",
            content=ev.RecallContent(
                title="Acme kettle KX-1",
                hazard="Burns.",
                severity="high",
                stop_using="Unplug it.",
                remedies=[ev.Remedy(type="refund_on_destruction")],
                consumer_contact="recalls@acme.example",
            ),
            rules=[ev.ScopeRule(product_ids=["prod-kettle"])],
            published_at=T0,
            logistics_enrolled=enrolled,
        )
    )


def state(alert: int, version: int, *, units: int = 1) -> ev.AlertState:
    alert_id = ALERT_IDS[alert]
    return ev.AlertState(
        alert_id=alert_id,
        alert_version=version,
        customer_id=CUSTOMER_OF[alert_id],
        recall_id=RECALL_OF[alert_id],
        recall_version=1,
        seller_id="seller-1",
        tier="confirmed",
        lines=[
            ev.AffectedLine(
                order_id="ord-1",
                line_id=f"line-{alert}",
                product_id="prod-kettle",
                seller_id="seller-1",
                purchased_at=T0,
                units=units,
                unit_price=Decimal("19.99"),
                currency="EUR",
            )
        ],
        recall=published(RECALL_OF[alert_id], enrolled=True).recall.content,
    )


def raised(alert: int, version: int = 1, *, units: int = 1) -> ev.AlertRaised:
    return ev.AlertRaised(alert=state(alert, version, units=units))


def updated(alert: int, version: int, *, units: int = 1) -> ev.AlertUpdated:
    return ev.AlertUpdated(alert=state(alert, version, units=units))


def reported(number: int, alert: int, *, bounced: bool, minute: int = 0) -> ev.Event:
    common = {**ALERTS.notice_fields(number, alert), "source": "dsn"}
    at = T0 + timedelta(minutes=minute)
    if bounced:
        return ev.NoticeBounced(**common, bounce_type="hard", bounced_at=at)
    return ev.NoticeDelivered(**common, delivered_at=at)


def requested(
    number: int, alert: int, remedy: ev.RemedyType = "refund_on_destruction"
) -> ev.RemedyRequested:
    alert_id = ALERT_IDS[alert]
    return ev.RemedyRequested(
        request_id=REQUEST_IDS[number],
        alert_id=alert_id,
        customer_id=CUSTOMER_OF[alert_id],
        recall_id=RECALL_OF[alert_id],
        remedy=remedy,
        requested_at=T0,
    )


def alert_row(rows: dict[str, list[tuple[Any, ...]]], alert: int) -> dict[str, Any]:
    (found,) = [r for r in rows["alerts"] if r[0] == ALERT_IDS[alert]]
    keys = ("alert_id", "customer_id", "recall_id", "version", "status", "lines", "units")
    return dict(zip(keys, found, strict=True))


def case_row(rows: dict[str, list[tuple[Any, ...]]], request: int) -> dict[str, Any]:
    (found,) = [r for r in rows["cases"] if r[0] == case_id_for(REQUEST_IDS[request])]
    return dict(
        zip(("case_id", "state", "waiting_for", "units", "seller_id", "reason"), found, strict=True)
    )


# --------------------------------------------------------------------------- the cases that matter


async def test_the_hot_read_models_are_registered_in_batch_form(twins: Twins) -> None:
    registered = twins.batched.cases.handlers()
    hot = (ev.AlertRaised, ev.AlertUpdated, ev.AlertWithdrawn, ev.AlertClosed, ev.NoticeSent)
    assert all(isinstance(registered[t], BatchHandler) for t in hot)
    # One object for raised and updated: the runner passes an interleaved run of them in one call.
    assert registered[ev.AlertRaised] is registered[ev.AlertUpdated]
    assert registered[ev.NoticeSent] is registered[ev.NoticeFailed]


async def test_raised_then_updated_in_one_batch_leaves_the_update(twins: Twins) -> None:
    rows = await both_ways(twins, [raised(0, 1, units=1), updated(0, 2, units=4), raised(1)])
    assert (alert_row(rows, 0)["version"], alert_row(rows, 0)["units"]) == (2, 4)
    assert alert_row(rows, 1)["status"] == "open"


async def test_a_stale_version_after_a_newer_one_changes_nothing(twins: Twins) -> None:
    rows = await both_ways(
        twins,
        [updated(0, 2, units=4), raised(0, 1, units=1)],  # in one batch
        [updated(0, 3, units=3)],
        [raised(0, 1, units=9), updated(0, 2, units=8)],  # a replay in a later batch
    )
    assert (alert_row(rows, 0)["version"], alert_row(rows, 0)["units"]) == (3, 3)


async def test_withdrawal_after_raise_in_one_batch_and_closure(twins: Twins) -> None:
    rows = await both_ways(
        twins,
        [raised(0), raised(1), withdrawn(0, 2), withdrawn(0, 1), raised(2), closed(2)],
        [closed(0), closed(1), withdrawn(1, 5), withdrawn(1, 3)],
    )
    assert (alert_row(rows, 0)["status"], alert_row(rows, 0)["version"]) == ("withdrawn", 2)
    # A withdrawal newer than the row applies even to a closed alert.
    assert (alert_row(rows, 1)["status"], alert_row(rows, 1)["version"]) == ("withdrawn", 5)
    assert alert_row(rows, 2)["status"] == "closed"


async def test_a_case_waiting_for_its_alert_goes_on_with_the_version_it_would_have_seen(
    twins: Twins,
) -> None:
    rows = await both_ways(
        twins,
        [requested(0, 0), requested(1, 2)],  # before their alerts: both wait
        [raised(0, 1, units=2), raised(1), updated(0, 2, units=5), raised(2, 1, units=3)],
    )
    # One by one the case went on when version 1 arrived, with its 2 units.
    first = case_row(rows, 0)
    assert (first["waiting_for"], first["units"]) == ("proof", 2)
    assert case_row(rows, 1)["state"] == "referred_to_seller"
    assert alert_row(rows, 0)["units"] == 5


async def test_a_case_decided_after_a_bulk_withdrawal_in_the_same_batch_sees_it(
    twins: Twins,
) -> None:
    """The batch shares one session: the bulk UPDATE must not leave a stale copy of the alert for
    the case logic that follows (a request for a withdrawn alert is rejected)."""
    rows = await both_ways(
        twins, [requested(0, 0), raised(0), withdrawn(0, 2), requested(1, 0, "replacement")]
    )
    assert case_row(rows, 0)["waiting_for"] == "proof"
    assert case_row(rows, 1)["state"] == "rejected"


async def test_notices_sent_wins_and_failed_never_overwrites(twins: Twins) -> None:
    rows = await both_ways(
        twins,
        [notice(0, 0, sent=False, minute=1), notice(0, 1, sent=True, minute=2)],
        [notice(1, 0, sent=True, minute=1), notice(1, 0, sent=False, minute=3)],
        [notice(2, 0, sent=False, minute=1), notice(2, 1, sent=False, minute=4)],
    )
    by_id = {r[0]: r for r in rows["notices"]}
    assert (by_id[NOTICE_IDS[0]][1], by_id[NOTICE_IDS[0]][6:]) == (
        ALERT_IDS[0],
        ("sent", T0 + timedelta(minutes=2)),
    )
    assert by_id[NOTICE_IDS[1]][6:] == ("sent", T0 + timedelta(minutes=1))
    assert by_id[NOTICE_IDS[2]][6:] == ("failed", T0 + timedelta(minutes=1))


async def test_a_report_heard_first_stands_against_the_sent_event_after_it(twins: Twins) -> None:
    rows = await both_ways(
        twins,
        [reported(0, 0, bounced=False, minute=1), notice(0, 0, sent=True, minute=0)],
        [notice(1, 0, sent=True), reported(1, 0, bounced=True, minute=2)],
        [notice(1, 0, sent=True, minute=3), notice(2, 1, sent=False), notice(2, 1, sent=True)],
    )
    status = {r[0]: r[6] for r in rows["notices"]}
    assert [status[n] for n in NOTICE_IDS] == ["delivered", "bounced", "sent"]


async def test_the_bulk_statements_are_the_same_text_for_any_run(twins: Twins) -> None:
    """Of constant shape, so compiled once and cached (a multi-row VALUES or an IN list is
    rendered anew for every run length)."""
    engine = twins.batched.sf.kw["bind"].sync_engine
    texts: list[str] = []
    bulk = ("INSERT INTO notices", "UPDATE alerts", "SELECT cases")

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.startswith(bulk):
            texts.append(statement)

    await reset(twins.batched)
    event.listen(engine, "before_cursor_execute", seen)
    try:
        for batch in (
            [notice(0, 0, sent=True)],
            [notice(1, 0, sent=True), notice(2, 1, sent=True)],
            [notice(0, 0, sent=False)],
            [notice(1, 0, sent=False), notice(2, 1, sent=False)],
            [raised(0)],
            [raised(1), raised(2)],
            [withdrawn(0, 2)],
            [withdrawn(1, 2), withdrawn(2, 2)],
            [closed(0)],
            [closed(1), closed(2)],
        ):
            await apply_as_batch(twins.batched, delivered(batch))
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    # Two each of: sent notices upserted, failed ones inserted, alerts withdrawn, closed; four
    # lookups of the waiting cases (before and after each run of raised alerts). Five texts.
    assert len(texts) == 12
    assert len(set(texts)) == 5, "\n".join(sorted(set(texts)))


async def test_runs_of_every_read_model_in_a_row(twins: Twins) -> None:
    rows = await both_ways(
        twins,
        [raised(0), raised(1), updated(0, 2), raised(2), notice(0, 0, sent=True)],
        [notice(1, 1, sent=True), notice(2, 2, sent=False), withdrawn(0, 3), withdrawn(1, 2)],
        [closed(0), closed(1), closed(2)],
    )
    assert [alert_row(rows, a)["status"] for a in range(3)] == ["withdrawn", "withdrawn", "closed"]
    assert len(rows["notices"]) == 3


# --------------------------------------------------------------------------- any sequence at all

alert_no = st.integers(0, len(ALERT_IDS) - 1)
version = st.integers(1, 4)
an_event = st.one_of(
    st.builds(raised, alert_no, version, units=st.integers(1, 5)),
    st.builds(updated, alert_no, version, units=st.integers(1, 5)),
    st.builds(withdrawn, alert_no, st.integers(1, 5)),
    st.builds(closed, alert_no),
    st.builds(
        notice,
        st.integers(0, len(NOTICE_IDS) - 1),
        alert_no,
        sent=st.booleans(),
        minute=st.integers(0, 5),
    ),
    st.builds(
        reported,
        st.integers(0, len(NOTICE_IDS) - 1),
        alert_no,
        bounced=st.booleans(),
        minute=st.integers(0, 5),
    ),
    st.builds(
        requested,
        st.integers(0, len(REQUEST_IDS) - 1),
        alert_no,
        st.sampled_from(["refund_on_destruction", "replacement"]),
    ),
)


@settings(
    max_examples=75,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(events=st.lists(an_event, max_size=24), cuts=st.lists(st.integers(0, 24), max_size=3))
async def test_any_sequence_in_batches_equals_one_by_one(
    twins: Twins, events: list[ev.Event], cuts: list[int]
) -> None:
    bounds = [0, *sorted(min(c, len(events)) for c in cuts), len(events)]
    batches = [events[a:b] for a, b in itertools.pairwise(bounds) if a < b]
    await both_ways(twins, *batches)
