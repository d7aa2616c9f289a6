"""Reconcile streams matching lines through a server-side cursor and settles customers in small
batches, writing between cursor fetches; this runs it with tiny batch sizes so many batches and
fetches interleave. New alerts go straight to alerts.v1 (batch API); the rest of the difference
through the outbox."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import asyncpg
import orjson
import pytest
from sqlalchemy import func, select, text, update

import purchase_matcher
import purchase_matcher.handlers as handlers
from purchase_matcher.domain import scope_fingerprint
from purchase_matcher.handlers import Matcher
from purchase_matcher.models import ActiveRecall, Alert, PurchaseLine
from purchase_matcher.settings import Settings
from recall_shared import events as ev
from recall_shared.db import asyncpg_dsn, create_engine, create_session_factory
from recall_shared.envelope import read_headers, wrap
from recall_shared.kafka import create_client_producer, create_topics
from recall_shared.outbox import Outbox, OutboxRelay
from recall_shared.sample_events import recall_snapshot
from recall_shared.testing import (
    delete_topics,
    kafka_bootstrap,
    migrated_database,
    read_to_end,
    unique_topic_prefix,
)
from recall_shared.topics import ALERTS

pytestmark = pytest.mark.integration
MIGRATIONS = Path(purchase_matcher.__file__).parent / "migrations"


def _recall(version: int, *rules: ev.ScopeRule) -> ev.RecallSnapshot:
    return recall_snapshot(*rules, recall_id="r-stream", version=version, title="Heater")


def _line(
    i: int,
    customer_id: str,
    *,
    seller_id: str = "s1",
    cancelled: bool = False,
    quantity: int = 1,
    product_id: str = "P",
) -> PurchaseLine:
    return PurchaseLine(
        line_id=f"l{i}",
        order_id=f"o{i}",
        customer_id=customer_id,
        product_id=product_id,
        seller_id=seller_id,
        quantity=quantity,
        returned_quantity=0,
        cancelled=cancelled,
        unit_price=Decimal("5"),
        currency="EUR",
        placed_at=datetime(2024, 5, 1, tzinfo=UTC),
    )


@asynccontextmanager
async def _matcher_with(
    lines: list[PurchaseLine], **producer_options: object
) -> AsyncIterator[tuple]:
    """A migrated database holding ``lines``, an alerts topic of its own and a Matcher writing to
    both."""
    prefix = unique_topic_prefix()
    await create_topics(kafka_bootstrap(), prefix, [ALERTS])
    producer = create_client_producer(kafka_bootstrap(), "test-reconcile", **producer_options)
    await producer.start()
    try:
        async with migrated_database(MIGRATIONS, "stream") as url:
            engine = create_engine(Settings(database_url=url))
            sessions = create_session_factory(engine)
            try:
                async with sessions() as s, s.begin():
                    s.add_all(lines)
                matcher = Matcher(
                    Outbox(source="/tests", service="purchase-matcher", topic_prefix=prefix),
                    lambda: producer,
                )
                yield matcher, sessions, prefix + ALERTS.name, url
            finally:
                await engine.dispose()
    finally:
        await producer.stop()
        await delete_topics(prefix)


async def test_many_batches_raise_then_withdraw_exactly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(handlers, "RECONCILE_BATCH", 7)
    monkeypatch.setattr(handlers, "RECONCILE_STREAM_ROWS", 11)
    lines = [
        _line(i, f"c{i % 120:03d}", seller_id="s1" if i % 3 else "s2", cancelled=i % 17 == 0)
        for i in range(600)
    ]
    async with _matcher_with(lines) as (matcher, sessions, topic, _):
        first = _recall(1, ev.ScopeRule(product_ids=["P"]))
        async with sessions() as s, s.begin():
            counts = await matcher.reconcile(
                s, first, wrap(ev.RecallPublished(recall=first), source="/t")
            )
        assert counts["raise"] == 120 and counts["withdraw"] == 0
        async with sessions() as s:
            assert (
                await s.scalar(
                    select(func.count()).select_from(Alert).where(Alert.status == "open")
                )
                == 120
            )
            assert (
                await s.scalar(text("SELECT count(*) FROM outbox")) == 0
            )  # new alerts are not written twice
            line_total = await s.scalar(text("SELECT sum(line_count) FROM alerts"))
            assert line_total == 600 - len([i for i in range(600) if i % 17 == 0])
        # every new alert is on the topic once, keyed by customer, with all of that customer's lines
        records = await read_to_end(topic)
        raised = [ev.AlertRaised.model_validate_json(r.value) for r in records]
        assert len(raised) == 120 and len({a.alert.alert_id for a in raised}) == 120
        assert all(
            r.key.decode() == a.alert.customer_id for r, a in zip(records, raised, strict=True)
        )
        assert {read_headers(r.headers, r.value).type for r in records} == {"alert.raised.v1"}
        assert sum(len(a.alert.lines) for a in raised) == line_total

        # Narrow to seller s2: customers with only s1 lines are withdrawn, across many sweep
        # batches.
        narrowed = _recall(2, ev.ScopeRule(product_ids=["P"], seller_ids=["s2"]))
        async with sessions() as s, s.begin():
            counts = await matcher.reconcile(
                s, narrowed, wrap(ev.RecallAmended(recall=narrowed), source="/t")
            )
        async with sessions() as s:
            s2_customers = set(
                (
                    await s.execute(
                        select(PurchaseLine.customer_id).where(
                            PurchaseLine.seller_id == "s2", PurchaseLine.cancelled.is_(False)
                        )
                    )
                ).scalars()
            )
            open_customers = set(
                (await s.execute(select(Alert.customer_id).where(Alert.status == "open"))).scalars()
            )
        assert open_customers == s2_customers
        assert counts["withdraw"] == 120 - len(s2_customers) > 0
        assert counts["update"] == len(s2_customers)

        # Reprocessing the same version changes nothing and emits nothing.
        async with sessions() as s:
            before = await s.scalar(text("SELECT count(*) FROM outbox"))
        async with sessions() as s, s.begin():
            again = await matcher.reconcile(
                s, narrowed, wrap(ev.RecallAmended(recall=narrowed), source="/t")
            )
        async with sessions() as s:
            assert await s.scalar(text("SELECT count(*) FROM outbox")) == before
        assert (again["raise"], again["update"], again["withdraw"]) == (0, 0, 0)
        assert len(await read_to_end(topic)) == 120  # and nothing more went straight to the topic


async def test_a_pass_that_fails_half_way_is_rerun_without_a_new_event_id(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """New alerts reach the topic before the transaction commits; when the pass fails after some of
    them were sent, the rerun sends the same events with the same ids (consumers' inboxes drop the
    repeats) and the table ends with exactly one row per customer."""
    monkeypatch.setattr(handlers, "RECONCILE_BATCH", 10)
    # small batches, so some of the first attempt's alerts are on their way before it fails
    async with _matcher_with([_line(i, f"c{i:03d}") for i in range(95)], max_batch_size=2048) as (
        matcher,
        sessions,
        topic,
        _,
    ):
        recall = _recall(1, ev.ScopeRule(product_ids=["P"]))
        env = wrap(ev.RecallPublished(recall=recall), source="/t")

        real_write = handlers._Pass.write_new
        calls = 0

        async def failing_write(self, conn, rows, background):
            nonlocal calls
            calls += 1
            if calls == 5:
                raise ConnectionResetError("database went away")
            await real_write(self, conn, rows, background)

        monkeypatch.setattr(handlers._Pass, "write_new", failing_write)
        with pytest.raises(ConnectionResetError):
            async with sessions() as s, s.begin():
                await matcher.reconcile(s, recall, env)
        async with sessions() as s:
            assert await s.scalar(select(func.count()).select_from(Alert)) == 0  # rolled back
        monkeypatch.setattr(handlers._Pass, "write_new", real_write)
        async with sessions() as s, s.begin():
            counts = await matcher.reconcile(s, recall, env)
        assert counts["raise"] == 95
        async with sessions() as s:
            assert await s.scalar(select(func.count()).select_from(Alert)) == 95

        records = await read_to_end(topic)
        by_id: dict[str, set[bytes]] = {}
        for r in records:
            by_id.setdefault(read_headers(r.headers, r.value).id, set()).add(r.value)
        assert len(records) > 95  # the first attempt's sends are on the topic too
        assert len(by_id) == 95  # ... under the same ids
        assert all(len(bodies) == 1 for bodies in by_id.values())  # with the same content


async def test_a_re_check_of_a_customer_waits_for_a_running_pass_and_then_finds_its_alert(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An order event re-checks its customer against the recall while a whole-recall pass is
    running: it waits for the pass (the recall's row lock) instead of raising the same alert a
    second time."""
    monkeypatch.setattr(handlers, "RECONCILE_BATCH", 10)
    lines = [_line(i, f"c{i:03d}") for i in range(30)]
    async with _matcher_with(lines) as (matcher, sessions, topic, _):
        recall = _recall(1, ev.ScopeRule(product_ids=["P"]))
        # the pass needs the recall's row, as on_recall_changed stores it
        async with sessions() as s, s.begin():
            s.add(
                ActiveRecall(
                    recall_id=recall.recall_id,
                    version=1,
                    status="active",
                    snapshot=recall.model_dump(mode="json"),
                    published_at=recall.published_at,
                )
            )
        paused, resume = asyncio.Event(), asyncio.Event()
        real_write = handlers._Pass.write_new

        async def pausing_write(self, conn, rows, background):
            if not paused.is_set():
                paused.set()
                await resume.wait()
            await real_write(self, conn, rows, background)

        monkeypatch.setattr(handlers._Pass, "write_new", pausing_write)

        async def whole_pass() -> dict[str, int]:
            async with sessions() as s, s.begin():
                return await matcher.reconcile(
                    s, recall, wrap(ev.RecallPublished(recall=recall), source="/t")
                )

        async def re_check() -> dict[str, int]:
            async with sessions() as s, s.begin():
                return await matcher.reconcile(
                    s,
                    recall,
                    wrap(ev.RecallPublished(recall=recall), source="/t"),
                    customer_ids=["c005"],
                )

        passing = asyncio.create_task(whole_pass())
        await asyncio.wait_for(paused.wait(), 10)
        checking = asyncio.create_task(re_check())
        await asyncio.sleep(0.5)
        assert not checking.done()  # waiting for the pass
        resume.set()
        assert (await passing)["raise"] == 30
        assert await checking == {"raise": 0, "update": 0, "withdraw": 0, "none": 1}
        records = await read_to_end(topic)
        assert len(records) == 30  # the re-check raised nothing a second time


# --------------------------------------------------------- failed passes that consumers saw part of


def _fail_write_at(monkeypatch: pytest.MonkeyPatch, failing_call: int) -> None:
    """The pass's ``failing_call``-th write of new alert rows fails as if the database went away
    (the alerts of the batches before it are on their way to the topic by then)."""
    real_write = handlers._Pass.write_new
    calls = 0

    async def failing_write(self, conn, rows, background):
        nonlocal calls
        calls += 1
        if calls == failing_call:
            raise ConnectionResetError("database went away")
        await real_write(self, conn, rows, background)

    monkeypatch.setattr(handlers._Pass, "write_new", failing_write)


async def _fail_a_pass(
    monkeypatch: pytest.MonkeyPatch, matcher: Matcher, sessions, recall: ev.RecallSnapshot
) -> None:
    original = handlers._Pass.write_new
    _fail_write_at(monkeypatch, 4)
    with pytest.raises(ConnectionResetError):
        async with sessions() as s, s.begin():
            await matcher.reconcile(s, recall, wrap(ev.RecallPublished(recall=recall), source="/t"))
    monkeypatch.setattr(handlers._Pass, "write_new", original)


async def _relay_outbox(matcher: Matcher, url: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        relay = OutboxRelay(
            database_url=url, producer=matcher.producer(), service="purchase-matcher"
        )
        await relay.publish_pending(conn)
    finally:
        await conn.close()


def _replay(records: list) -> dict[str, tuple[str, int, str | None]]:
    """What a consumer holds after reading alerts.v1 from the start, applying customer-api's rules
    (an alert state replaces one of a lower or equal version; a withdrawal needs a higher version; a
    withdrawal of an alert never seen changes nothing): alert id -> (status, version,
    fingerprint)."""
    held: dict[str, tuple[str, int, str | None]] = {}
    for r in records:
        kind = read_headers(r.headers, r.value).type
        if kind in ("alert.raised.v1", "alert.updated.v1"):
            state = ev.AlertState.model_validate(orjson.loads(r.value)["alert"])
            current = held.get(state.alert_id)
            if current is None or current[1] <= state.alert_version:
                held[state.alert_id] = ("open", state.alert_version, scope_fingerprint(state))
        elif kind == "alert.withdrawn.v1":
            withdrawn = ev.AlertWithdrawn.model_validate_json(r.value)
            current = held.get(withdrawn.alert_id)
            if current is not None and current[1] < withdrawn.alert_version:
                held[withdrawn.alert_id] = ("withdrawn", withdrawn.alert_version, current[2])
        elif kind == "alert.closed.v1":
            closed = ev.AlertClosed.model_validate_json(r.value)
            if (current := held.get(closed.alert_id)) is not None:
                held[closed.alert_id] = ("closed", current[1], current[2])
    return held


async def _assert_consumers_converged(sessions, topic: str) -> dict:
    """A consumer replaying the topic shows exactly the open alerts the database holds (same version
    and scope); every other alert it knows of is not open, and it knows of none the database
    lacks."""
    held = _replay(await read_to_end(topic))
    async with sessions() as s:
        rows = {a.alert_id: a for a in (await s.execute(select(Alert))).scalars()}
        assert await s.scalar(text("SELECT count(*) FROM alert_announcements")) == 0
    assert set(held) <= set(rows)
    for alert_id, row in rows.items():
        if row.status == "open":
            assert held.get(alert_id) == ("open", row.alert_version, row.fingerprint), (
                row.customer_id
            )
        elif alert_id in held:
            assert held[alert_id][:2] == (row.status, row.alert_version), row.customer_id
    return held


async def _sent_customers(topic: str) -> list[str]:
    return [r.key.decode() for r in await read_to_end(topic)]


async def test_a_rerun_after_purchases_changed_withdraws_or_updates_what_the_failed_pass_sent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A whole-recall pass fails half way after some alerts reached the topic; before it is rerun
    one of those customers cancels their order and another returns a unit. The rerun withdraws the
    first alert and updates the second under new event ids, so a consumer replaying alerts.v1 ends
    where the database is; the others are sent again as they were (same ids)."""
    monkeypatch.setattr(handlers, "RECONCILE_BATCH", 10)
    lines = [_line(i, f"c{i:03d}", quantity=2) for i in range(40)]
    async with _matcher_with(lines, max_batch_size=2048) as (matcher, sessions, topic, url):
        recall = _recall(1, ev.ScopeRule(product_ids=["P"]))
        await _fail_a_pass(monkeypatch, matcher, sessions, recall)
        sent = await _sent_customers(topic)
        async with sessions() as s:
            assert await s.scalar(select(func.count()).select_from(Alert)) == 0  # rolled back
            announced = set(
                (await s.execute(text("SELECT unnest(customer_ids) FROM alert_announcements")))
                .scalars()
                .all()
            )
        assert len(sent) >= 2 and set(sent) <= announced  # nothing reached the topic unannounced
        cancelled, returned = sent[0], sent[1]
        async with sessions() as s, s.begin():
            await s.execute(
                update(PurchaseLine)
                .where(PurchaseLine.customer_id == cancelled)
                .values(cancelled=True)
            )
            await s.execute(
                update(PurchaseLine)
                .where(PurchaseLine.customer_id == returned)
                .values(returned_quantity=1)
            )

        async with sessions() as s, s.begin():
            counts = await matcher.reconcile(
                s, recall, wrap(ev.RecallPublished(recall=recall), source="/t")
            )
        assert (counts["raise"], counts["update"], counts["withdraw"]) == (38, 1, 1)
        await _relay_outbox(matcher, url)
        held = await _assert_consumers_converged(sessions, topic)
        async with sessions() as s:
            statuses = dict((await s.execute(select(Alert.customer_id, Alert.status))).all())
        assert statuses[cancelled] == "withdrawn" and statuses[returned] == "open"
        assert len(held) == 40
        assert sum(1 for status, _, _ in held.values() if status == "open") == 39

        # Nothing is left to settle: the same event again changes nothing and sends nothing.
        before = len(await read_to_end(topic))
        async with sessions() as s, s.begin():
            again = await matcher.reconcile(
                s, recall, wrap(ev.RecallPublished(recall=recall), source="/t")
            )
        await _relay_outbox(matcher, url)
        assert (again["raise"], again["update"], again["withdraw"]) == (0, 0, 0)
        assert len(await read_to_end(topic)) == before


async def test_a_failed_pass_is_settled_by_a_newer_version_a_re_check_or_the_close(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A pass that never commits (it dead-lettered) leaves alerts on the topic without rows.
    Whatever touches the recall next settles them: a re-check of one customer (an order event)
    withdraws that customer's alert once the order is cancelled; an amendment that no longer names
    the product withdraws the others; closing the recall instead closes them."""
    monkeypatch.setattr(handlers, "RECONCILE_BATCH", 10)
    for close in (False, True):
        lines = [_line(i, f"c{i:03d}") for i in range(40)]
        async with _matcher_with(lines, max_batch_size=2048) as (matcher, sessions, topic, url):
            recall = _recall(1, ev.ScopeRule(product_ids=["P"]))
            await _fail_a_pass(monkeypatch, matcher, sessions, recall)
            sent = await _sent_customers(topic)
            assert sent
            async with sessions() as s, s.begin():
                await s.execute(
                    update(PurchaseLine)
                    .where(PurchaseLine.customer_id == sent[0])
                    .values(cancelled=True)
                )
            async with sessions() as s, s.begin():
                counts = await matcher.reconcile(
                    s,
                    recall,
                    wrap(
                        ev.OrderCancelled(
                            order_id="o", customer_id=sent[0], cancelled_at=datetime.now(UTC)
                        ),
                        source="/t",
                    ),
                    customer_ids=[sent[0]],
                )
            assert counts["withdraw"] == 1
            if close:
                closed = ev.RecallClosed(recall=recall, closed_at=datetime.now(UTC))
                async with sessions() as s, s.begin():
                    await matcher.on_recall_closed(s, closed, wrap(closed, source="/t"))
            else:
                narrowed = _recall(2, ev.ScopeRule(product_ids=["Q"]))
                async with sessions() as s, s.begin():
                    counts = await matcher.reconcile(
                        s, narrowed, wrap(ev.RecallAmended(recall=narrowed), source="/t")
                    )
                assert counts["withdraw"] >= len(set(sent)) - 1
            await _relay_outbox(matcher, url)
            held = await _assert_consumers_converged(sessions, topic)
            assert {status for status, _, _ in held.values()} == (
                {"withdrawn", "closed"} if close else {"withdrawn"}
            )


async def test_alert_changes_are_counted_when_the_pass_commits() -> None:
    from prometheus_client import CollectorRegistry

    from purchase_matcher.metrics import MatcherMetrics

    lines = [_line(i, f"m{i:02d}") for i in range(5)]
    async with _matcher_with(lines) as (matcher, sessions, _, _):
        registry = CollectorRegistry()
        matcher.metrics = MatcherMetrics(registry)
        recall = _recall(1, ev.ScopeRule(product_ids=["P"]))
        env = wrap(ev.RecallPublished(recall=recall), source="/t")

        def raised() -> float | None:
            return registry.get_sample_value("alerts_changed_total", {"change": "raised"})

        async with sessions() as s, s.begin():
            await matcher.reconcile(s, recall, env)
            assert raised() == 0  # not before the commit
            await s.rollback()
        assert raised() == 0, "a pass rolled back counts nothing"
        async with sessions() as s, s.begin():
            await matcher.reconcile(s, recall, env)
        assert raised() == 5
        assert registry.get_sample_value("alerts_changed_total", {"change": "withdrawn"}) == 0
