"""The read model's batch forms leave the rows the one-event handlers leave, applied in order.

Two migrated databases side by side: one is fed as the batching runner feeds it (one transaction
per batch; a run of consecutive deliveries registered to the same BatchHandler goes to its
handle_many in one call), the other one event per transaction through the one-event handlers.
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

import customer_api
from customer_api import handlers
from customer_api.handlers import HANDLERS
from recall_shared import db as recall_db
from recall_shared import events as ev
from recall_shared import sample_events
from recall_shared.handlers import BatchHandler, Delivery
from recall_shared.sample_events import NumberedAlerts
from recall_shared.testing import migrated_database

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

MIGRATIONS = Path(customer_api.__file__).parent / "migrations"

ONE_EVENT_HANDLERS: dict[type[ev.Event], Any] = {
    ev.AlertRaised: handlers.on_alert_raised,
    ev.AlertUpdated: handlers.on_alert_updated,
    ev.AlertWithdrawn: handlers.on_alert_withdrawn,
    ev.AlertClosed: handlers.on_alert_closed,
    ev.RemedyCaseTransitioned: handlers.on_case_transitioned,
    ev.NoticeSent: handlers.on_notice_sent,
    ev.NoticeFailed: handlers.on_notice_failed,
}

# Fixed alerts, customers and remedy requests, so that random event sequences collide on them.
ALERT_IDS = [str(uuid.UUID(int=i + 1)) for i in range(3)]
CUSTOMER_OF = {a: f"cust-{i}" for i, a in enumerate(ALERT_IDS)}
RECALL_ID = "rc-batch"
REQUEST_OF = {a: str(uuid.UUID(int=100 + i)) for i, a in enumerate(ALERT_IDS)}
NOTICE_IDS = [str(uuid.UUID(int=200 + i)) for i in range(3)]
T0 = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
ALERTS = NumberedAlerts(ALERT_IDS, CUSTOMER_OF, dict.fromkeys(ALERT_IDS, RECALL_ID), NOTICE_IDS, T0)
withdrawn, closed, notice = ALERTS.withdrawn, ALERTS.closed, ALERTS.notice


@dataclass
class Twins:
    batched: async_sessionmaker[AsyncSession]
    one_by_one: async_sessionmaker[AsyncSession]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def twins() -> AsyncIterator[Twins]:
    async with (
        migrated_database(MIGRATIONS, prefix="custapi_batch") as url_a,
        migrated_database(MIGRATIONS, prefix="custapi_single") as url_b,
    ):
        engines = [create_async_engine(url_a), create_async_engine(url_b)]
        try:
            yield Twins(*(async_sessionmaker(e, expire_on_commit=False) for e in engines))
        finally:
            for e in engines:
                await e.dispose()


# --------------------------------------------------------------------------- feeding the twins


def delivered(events: Sequence[ev.Event]) -> list[Delivery[Any]]:
    return sample_events.delivered(events, source="/tests/customer-api/batch")


async def apply_as_batch(sf: async_sessionmaker[AsyncSession], batch: Sequence[ev.Event]) -> None:
    """As the batching runner applies a batch: one transaction, runs of one entry together."""
    async with sf() as session, session.begin():
        for entry, run in itertools.groupby(
            delivered(batch), key=lambda d: HANDLERS[type(d.event)]
        ):
            assert isinstance(entry, BatchHandler)
            await entry.handle_many(session, list(run))


async def apply_one_by_one(sf: async_sessionmaker[AsyncSession], batch: Sequence[ev.Event]) -> None:
    for d in delivered(batch):
        async with sf() as session, session.begin():
            await ONE_EVENT_HANDLERS[type(d.event)](session, d.event, d.envelope)


async def reset(sf: async_sessionmaker[AsyncSession]) -> None:
    async with sf() as session, session.begin():
        await session.execute(text("TRUNCATE alerts, notices, remedy_requests"))
        for alert_id, request_id in REQUEST_OF.items():
            await session.execute(
                text(
                    "INSERT INTO remedy_requests (request_id, alert_id, customer_id, remedy, "
                    "case_state, refunded_amount, requested_at, updated_at) "
                    "VALUES (:r, :a, :c, 'replacement', 'requested', 0, :t, :t)"
                ),
                {"r": request_id, "a": alert_id, "c": CUSTOMER_OF[alert_id], "t": T0},
            )


async def snapshot(sf: async_sessionmaker[AsyncSession]) -> dict[str, list[tuple[Any, ...]]]:
    """Every row the consumers write, without the wall-clock updated_at of alerts."""
    queries = {
        "alerts": "SELECT alert_id, customer_id, recall_id, alert_version, status, resolution, "
        "severity_rank, state FROM alerts ORDER BY alert_id",
        "notices": "SELECT notice_id, alert_id, customer_id, kind, status, at FROM notices "
        "ORDER BY notice_id",
        "remedy_requests": "SELECT request_id, case_id, case_state, refunded_amount, currency, "
        "reason, updated_at FROM remedy_requests ORDER BY request_id",
    }
    async with sf() as session:
        return {
            table: [tuple(r) for r in (await session.execute(text(q))).all()]
            for table, q in queries.items()
        }


async def both_ways(twins: Twins, *batches: Sequence[ev.Event]) -> dict[str, list[tuple[Any, ...]]]:
    """Applies the batches both ways from the same start; asserts the same rows; returns them."""
    for sf in (twins.batched, twins.one_by_one):
        await reset(sf)
    for batch in batches:
        await apply_as_batch(twins.batched, batch)
        await apply_one_by_one(twins.one_by_one, batch)
    rows = await snapshot(twins.batched)
    assert rows == await snapshot(twins.one_by_one)
    return rows


# --------------------------------------------------------------------------- event builders


def state(
    alert: int,
    version: int,
    *,
    units: int = 1,
    severity: ev.Severity = "high",
    customer_id: str | None = None,
) -> ev.AlertState:
    alert_id = ALERT_IDS[alert]
    return ev.AlertState(
        alert_id=alert_id,
        alert_version=version,
        customer_id=customer_id or CUSTOMER_OF[alert_id],
        recall_id=RECALL_ID,
        recall_version=1,
        seller_id="seller-1",
        tier="confirmed",
        lines=[
            ev.AffectedLine(
                order_id="ord-1",
                line_id="line-1",
                product_id="prod-kettle",
                seller_id="seller-1",
                purchased_at=T0,
                units=units,
                unit_price=Decimal("19.99"),
                currency="EUR",
            )
        ],
        recall=ev.RecallContent(
            title="Acme kettle KX-1",
            hazard="Burns.",
            severity=severity,
            stop_using="Unplug it.",
            remedies=[ev.Remedy(type="replacement")],
        ),
    )


def raised(alert: int, version: int = 1, **kw: Any) -> ev.AlertRaised:
    return ev.AlertRaised(alert=state(alert, version, **kw))


def updated(alert: int, version: int, **kw: Any) -> ev.AlertUpdated:
    return ev.AlertUpdated(alert=state(alert, version, **kw))


def transitioned(alert: int, case_state: ev.CaseState, minute: int = 0) -> ev.Event:
    alert_id = ALERT_IDS[alert]
    return ev.RemedyCaseTransitioned(
        case_id=f"case-{alert}",
        request_id=REQUEST_OF[alert_id],
        alert_id=alert_id,
        customer_id=CUSTOMER_OF[alert_id],
        recall_id=RECALL_ID,
        seller_id="seller-1",
        remedy="replacement",
        transition="t",
        from_state=None,
        state=case_state,
        refunded_amount=Decimal("0"),
        occurred_at=T0 + timedelta(minutes=minute),
    )


def alert_row(rows: dict[str, list[tuple[Any, ...]]], alert: int) -> dict[str, Any]:
    (found,) = [r for r in rows["alerts"] if r[0] == ALERT_IDS[alert]]
    keys = ("alert_id", "customer_id", "recall_id", "version", "status", "resolution", "rank")
    return {**dict(zip(keys, found, strict=False)), "units": found[7]["lines"][0]["units"]}


# --------------------------------------------------------------------------- the cases that matter


async def test_the_hot_events_are_registered_in_batch_form() -> None:
    assert all(isinstance(h, BatchHandler) for h in HANDLERS.values())
    # One object for raised and updated: the runner passes an interleaved run of them in one call.
    assert HANDLERS[ev.AlertRaised] is HANDLERS[ev.AlertUpdated]
    assert HANDLERS[ev.NoticeSent] is HANDLERS[ev.NoticeFailed]
    assert HANDLERS[ev.RemedyCaseTransitioned] is HANDLERS[ev.RemedyCaseProgressed]


async def test_raised_then_updated_in_one_batch_leaves_the_update(twins: Twins) -> None:
    rows = await both_ways(twins, [raised(0, 1, units=1), updated(0, 2, units=4)])
    row = alert_row(rows, 0)
    assert (row["version"], row["units"], row["status"]) == (2, 4, "open")


async def test_a_stale_version_after_a_newer_one_in_one_batch_changes_nothing(twins: Twins) -> None:
    rows = await both_ways(
        twins, [updated(0, 2, units=4, severity="critical"), raised(0, 1, units=1)]
    )
    row = alert_row(rows, 0)
    assert (row["version"], row["units"], row["rank"]) == (2, 4, 0)


async def test_a_replay_of_an_older_version_in_a_later_batch_changes_nothing(twins: Twins) -> None:
    rows = await both_ways(
        twins, [raised(0, 1), updated(0, 3, units=3)], [raised(0, 1, units=9), updated(0, 2)]
    )
    assert (alert_row(rows, 0)["version"], alert_row(rows, 0)["units"]) == (3, 3)


async def test_the_same_version_twice_leaves_the_later_one(twins: Twins) -> None:
    rows = await both_ways(twins, [raised(0, 2, units=2), updated(0, 2, units=5)])
    assert alert_row(rows, 0)["units"] == 5


async def test_an_alert_keeps_the_customer_it_was_inserted_with(twins: Twins) -> None:
    rows = await both_ways(
        twins,
        [raised(0, 1), updated(0, 2, customer_id="someone-else")],
        [raised(1, 1, customer_id="first"), updated(1, 2, customer_id="second")],
    )
    assert alert_row(rows, 0)["customer_id"] == CUSTOMER_OF[ALERT_IDS[0]]
    assert (alert_row(rows, 1)["customer_id"], alert_row(rows, 1)["version"]) == ("first", 2)


async def test_withdrawal_after_raise_in_one_batch(twins: Twins) -> None:
    rows = await both_ways(twins, [raised(0, 1), raised(1, 1), withdrawn(0, 2), raised(2, 1)])
    assert (alert_row(rows, 0)["status"], alert_row(rows, 0)["version"]) == ("withdrawn", 2)
    assert alert_row(rows, 1)["status"] == alert_row(rows, 2)["status"] == "open"


async def test_withdrawals_apply_only_while_newer_and_a_newer_state_reopens(twins: Twins) -> None:
    rows = await both_ways(
        twins,
        [raised(0, 2), withdrawn(0, 1), raised(1, 1)],  # a stale withdrawal of alert 0
        [withdrawn(1, 3), withdrawn(1, 2), updated(1, 4, units=2)],  # withdrawn, then back in scope
    )
    assert (alert_row(rows, 0)["status"], alert_row(rows, 0)["version"]) == ("open", 2)
    assert (alert_row(rows, 1)["status"], alert_row(rows, 1)["version"]) == ("open", 4)


async def test_closure_and_withdrawal_of_unknown_alerts_write_nothing(twins: Twins) -> None:
    rows = await both_ways(twins, [closed(0), withdrawn(1, 2), raised(2), closed(2), closed(2)])
    assert [r[0] for r in rows["alerts"]] == [ALERT_IDS[2]]
    assert alert_row(rows, 2)["status"] == "closed"


async def test_notices_keep_their_first_alert_and_the_last_status(twins: Twins) -> None:
    rows = await both_ways(
        twins,
        [raised(0)],
        [
            notice(0, 0, sent=False, minute=1),
            notice(0, 1, sent=True, minute=2),
            notice(1, 0, sent=True),
        ],
    )
    by_id = {r[0]: r for r in rows["notices"]}
    assert by_id[NOTICE_IDS[0]][1] == ALERT_IDS[0]
    assert by_id[NOTICE_IDS[0]][4:] == ("sent", T0 + timedelta(minutes=2))
    assert by_id[NOTICE_IDS[1]][4] == "sent"


async def test_a_notice_takes_its_last_event_whatever_its_time(twins: Twins) -> None:
    rows = await both_ways(
        twins,
        [notice(0, 0, sent=True, minute=4), notice(0, 0, sent=False, minute=1)],
        [notice(1, 1, sent=True, minute=2), notice(2, 2, sent=False)],
        [notice(1, 1, sent=True, minute=1), notice(2, 2, sent=True, minute=3)],
    )
    by_id = {r[0]: r[4:] for r in rows["notices"]}
    assert [by_id[n] for n in NOTICE_IDS] == [
        ("failed", T0 + timedelta(minutes=1)),
        ("sent", T0 + timedelta(minutes=1)),
        ("sent", T0 + timedelta(minutes=3)),
    ]


async def test_the_bulk_statements_are_the_same_text_for_any_run(twins: Twins) -> None:
    """Of constant shape, so compiled once and cached (a multi-row VALUES or an IN list is
    rendered anew for every run length)."""
    engine = twins.batched.kw["bind"].sync_engine
    texts: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.startswith(("INSERT INTO notices", "INSERT INTO alerts", "UPDATE alerts")):
            texts.append(statement)

    await reset(twins.batched)
    event.listen(engine, "before_cursor_execute", seen)
    try:
        for batch in (
            [notice(0, 0, sent=True)],
            [notice(1, 1, sent=True), notice(2, 2, sent=False), notice(0, 0, sent=False)],
            [raised(0)],
            [raised(1), updated(2, 2)],
            [withdrawn(0, 2)],
            [withdrawn(1, 2), withdrawn(2, 3)],
            [closed(0)],
            [closed(1), closed(2)],
        ):
            await apply_as_batch(twins.batched, batch)
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    # Two each of: notices upserted, alerts upserted, withdrawn, closed. Four texts.
    assert len(texts) == 8
    assert len(set(texts)) == 4, "\n".join(sorted(set(texts)))


async def test_case_transitions_keep_the_last_state_and_remedy_on_a_final_one(twins: Twins) -> None:
    rows = await both_ways(
        twins,
        [raised(0), raised(1)],
        [
            transitioned(0, "requested", 1),
            transitioned(0, "replacement_shipped", 2),
            transitioned(0, "closed", 3),
            transitioned(1, "requested", 1),
        ],
    )
    states = {r[0]: r[2] for r in rows["remedy_requests"]}
    assert states[REQUEST_OF[ALERT_IDS[0]]] == "closed"
    assert states[REQUEST_OF[ALERT_IDS[1]]] == "requested"
    assert alert_row(rows, 0)["resolution"] == "remedied"
    assert alert_row(rows, 1)["resolution"] is None


async def test_a_run_longer_than_one_statement_is_written_in_chunks(
    twins: Twins, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recall_db, "ROWS_PER_STATEMENT", 2)  # the shared slicing helper
    rows = await both_ways(
        twins,
        [raised(0), raised(1), updated(0, 2), raised(2), notice(0, 0, sent=True)],
        [notice(1, 1, sent=True), notice(2, 2, sent=False), withdrawn(0, 3), withdrawn(1, 2)],
        [closed(0), closed(1), closed(2)],
    )
    assert [alert_row(rows, a)["status"] for a in range(3)] == ["closed"] * 3
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
        transitioned,
        alert_no,
        st.sampled_from(["requested", "label_issued", "refunded", "rejected"]),
        st.integers(0, 5),
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
