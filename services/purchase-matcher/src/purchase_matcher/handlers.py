"""purchase-matcher's consumers: order history into the purchase index; recalls into alerts."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Protocol

import asyncpg
import orjson
from aiokafka import AIOKafkaProducer
from sqlalchemy import ColumnElement, and_, delete, exists, false, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from purchase_matcher.domain import (
    ALERT_NAMESPACE,
    AlertDraft,
    Announced,
    LabelFacts,
    Line,
    LineUnits,
    Previous,
    alert_event_body,
    alert_id_for,
    build_alert,
    cancellation_refusal,
    catch_up,
    decide,
    label_mismatch,
    line_identifiers,
    line_tier,
    model_key,
    next_version,
    recall_identifiers,
    return_refusal,
)
from purchase_matcher.metrics import MatcherMetrics
from purchase_matcher.models import (
    ActiveRecall,
    Alert,
    LabelConfirmation,
    PurchaseLine,
    RecallIdentifier,
)
from recall_shared import events as ev
from recall_shared.db import statement_chunks
from recall_shared.envelope import Envelope, FanOutHeaders
from recall_shared.event_ids import event_id, hashed_event_id
from recall_shared.handlers import Delivery, PermanentError, batched
from recall_shared.identifiers import normalise_gtin
from recall_shared.kafka import KeyedBatchSender
from recall_shared.logging import current_correlation_id
from recall_shared.outbox import Outbox

log = logging.getLogger(__name__)


def sale_event_id(recall_id: str, line_id: str) -> str:
    """Deterministic, and short enough for the outbox's 64-character event id whatever the upstream
    ids."""
    return hashed_event_id("sale", ALERT_NAMESPACE, f"{recall_id}\x1f{line_id}")


def gtin14(raw: str | None) -> str | None:
    """Order history spells GTINs every way ("0-11110-91128-5", UPC-12, EAN-13); recalls carry
    GTIN-14. An unreadable GTIN is dropped (it could match no rule, and must not stop the order from
    being indexed)."""
    return normalise_gtin(raw).gtin14 if raw else None


def order_line_rows(event: ev.OrderPlaced) -> list[dict]:
    """Purchase-index rows of an order: GTINs as GTIN-14 (unreadable ones dropped), model numbers
    keyed."""
    gift_recipient = (
        event.gift_recipient.model_dump_json() if event.is_gift and event.gift_recipient else None
    )
    return [
        {
            "line_id": ol.line_id,
            "order_id": event.order_id,
            "customer_id": event.customer_id,
            "product_id": ol.product_id,
            "title": ol.title,
            "gtin": gtin14(ol.gtin),
            "model_number": ol.model_number,
            "model_key": model_key(ol.model_number),
            "seller_id": ol.seller_id,
            "quantity": ol.quantity,
            "returned_quantity": 0,
            "cancelled": False,
            "unit_price": ol.unit_price,
            "currency": ol.currency,
            "lot": ol.lot,
            "serial": ol.serial,
            "placed_at": event.placed_at,
            "manufactured_on": ol.manufactured_on,
            "best_before": ol.best_before,
            "expires_on": ol.expires_on,
            "business_account_admin_id": event.business_account_admin_id,
            "is_gift": event.is_gift,
            "gift_recipient": gift_recipient,
        }
        for ol in event.lines
    ]


# A recall pass and an order re-check in flight at once would each miss the other under READ
# COMMITTED (the pass does not see the uncommitted order line, the re-check not the uncommitted
# recall) and no alert would be raised. A pass holds this lock exclusively, a re-check shares it,
# so the later of the two reads what the earlier committed. Re-checks run side by side; only passes
# wait on them, and they on a pass.
_PASS_OR_RECHECK = 0x52_43_4C_50_41_53_53  # "RCLPASS"


async def _lock_for_pass(session: AsyncSession) -> None:
    await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PASS_OR_RECHECK})


async def _lock_for_recheck(session: AsyncSession) -> None:
    await session.execute(text("SELECT pg_advisory_xact_lock_shared(:k)"), {"k": _PASS_OR_RECHECK})


RECONCILE_BATCH = 1000  # customers settled per round trip
RECONCILE_STREAM_ROWS = 5000  # rows fetched per cursor step

_LINE_COLUMNS = ", ".join(Line._fields)  # purchase_lines has a column of each name
_CUSTOMER = Line._fields.index("customer_id")
_EXISTING = (
    "SELECT customer_id, alert_id, alert_version, status, fingerprint, recall_version FROM alerts "
    "WHERE recall_id = $1 AND customer_id = ANY($2::text[]) FOR UPDATE"
)
_NEW_ALERT_COLUMNS = (
    "alert_id",
    "customer_id",
    "recall_id",
    "recall_version",
    "alert_version",
    "status",
    "tier",
    "fingerprint",
    "line_count",
    "units",
    "reconcile_pass",
    "updated_at",
)
_REOPEN_OR_UPDATE = (
    "UPDATE alerts SET status = 'open', recall_version = $3, alert_version = $4, tier = $5, "
    "fingerprint = $6, line_count = $7, units = $8, reconcile_pass = $9, updated_at = now() "
    "WHERE recall_id = $1 AND customer_id = $2"
)


_INSERT_NEW = (
    f"INSERT INTO alerts ({', '.join(_NEW_ALERT_COLUMNS)}) "
    f"VALUES ({', '.join(f'${i + 1}' for i in range(len(_NEW_ALERT_COLUMNS)))})"
)
_ANNOUNCE = (
    "INSERT INTO alert_announcements (recall_id, recall_version, pass_id, customer_ids, "
    "fingerprints, tiers) VALUES ($1, $2, $3, $4::text[], $5, $6)"
)
# Announced alerts without a row: sent by a pass that never committed. The latest entry per customer
# wins.
_PENDING_ANNOUNCEMENTS = (
    "SELECT a.customer_ids[i], encode(substring(a.fingerprints FROM i * 32 - 31 FOR 32), 'hex'), "
    "substr(a.tiers, i, 1), a.recall_version FROM alert_announcements a "
    "CROSS JOIN LATERAL generate_subscripts(a.customer_ids, 1) AS i "
    "WHERE a.recall_id = $1 AND ($2::text[] IS NULL OR a.customer_ids[i] = ANY($2::text[])) "
    "AND NOT EXISTS (SELECT 1 FROM alerts al WHERE al.recall_id = a.recall_id "
    "AND al.customer_id = a.customer_ids[i]) ORDER BY a.announcement_id"
)
# An announcement's tiers, one letter each.
_TIER_LETTER = {"confirmed": "c", "possibly_affected": "p"}
_TIER_OF_LETTER = {letter: tier for tier, letter in _TIER_LETTER.items()}
WITHDRAWN_REASON = "Your purchase is no longer within the scope of this recall."
_ANY_LABEL = "SELECT EXISTS (SELECT 1 FROM label_confirmations WHERE recall_id = $1)"
_LABELS = (
    "SELECT customer_id, lot, serial, manufactured_on, best_before, expires_on "
    "FROM label_confirmations WHERE recall_id = $1 AND customer_id = ANY($2::text[])"
)


async def labels_of(
    conn: asyncpg.Connection, recall_id: str, customer_ids: list[str]
) -> dict[str, LabelFacts]:
    """What these customers confirmed from their labels for the recall (label_confirmations)."""
    rows = await conn.fetch(_LABELS, recall_id, customer_ids)
    return {r[0]: LabelFacts(*r[1:]) for r in rows}


async def pending_announcements(
    conn: asyncpg.Connection, recall_id: str, customer_ids: list[str] | None
) -> dict[str, Announced]:
    """Alerts of ``recall_id`` (of these customers, or all) that consumers may hold without a row
    here."""
    rows = await conn.fetch(_PENDING_ANNOUNCEMENTS, recall_id, customer_ids)
    return {r[0]: Announced(r[1], _TIER_OF_LETTER[r[2]], r[3]) for r in rows}


def withdrawal(
    alert_id: str, alert_version: int, customer_id: str, recall: ev.RecallSnapshot
) -> tuple[ev.Event, str]:
    """An alert.withdrawn.v1 event and its deterministic id."""
    withdrawn = ev.AlertWithdrawn(
        alert_id=alert_id,
        alert_version=alert_version,
        customer_id=customer_id,
        recall_id=recall.recall_id,
        recall_version=recall.version,
        reason=WITHDRAWN_REASON,
    )
    return withdrawn, event_id(alert_id, alert_version, withdrawn.event_type)


def matching_lines_sql(recall: ev.RecallSnapshot, only_customers: bool) -> tuple[str, list] | None:
    """The recall's candidate lines (by product id, GTIN or model number) in customer order, as one
    statement with array parameters; None when the recall names no identifier at all."""
    clauses, params = [], []
    for kind, values in recall_identifiers(recall).items():
        if values:
            params.append(values)
            clauses.append(f"{_LINE_COLUMN_OF[kind]} = ANY(${len(params)}::text[])")
    if not clauses:
        return None
    sql = f"SELECT {_LINE_COLUMNS} FROM purchase_lines WHERE ({' OR '.join(clauses)})"
    if only_customers:
        sql += f" AND customer_id = ANY(${len(params) + 1}::text[])"
    return sql + " ORDER BY customer_id, line_id", params


_LINE_COLUMN_OF = {"product": "product_id", "gtin": "gtin", "model": "model_key"}


async def _driver_connection(session: AsyncSession) -> asyncpg.Connection:
    """The session's own asyncpg connection, inside its transaction: the bulk path reads with a
    cursor and writes with COPY, which the ORM does not offer."""
    raw = await (await session.connection()).get_raw_connection()
    return raw.driver_connection


async def _fetch_chunks(
    conn: asyncpg.Connection, sql: str, params: list
) -> AsyncGenerator[list, None]:
    cursor = await conn.cursor(sql, *params)
    while rows := await cursor.fetch(RECONCILE_STREAM_ROWS):
        yield rows


def _engine_of(session: AsyncSession) -> AsyncEngine:
    engine = session.bind
    if not isinstance(engine, AsyncEngine):
        raise TypeError("the matcher's sessions are bound to an engine")
    return engine


async def _read_on_own_connection(
    session: AsyncSession, sql: str, params: list, work_mem: str | None
) -> AsyncGenerator[list, None]:
    async with _engine_of(session).connect() as reader:
        await reader.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"))
        if work_mem:
            await reader.execute(text("SELECT set_config('work_mem', :v, true)"), {"v": work_mem})
        raw = await reader.get_raw_connection()
        async with contextlib.aclosing(_fetch_chunks(raw.driver_connection, sql, params)) as chunks:
            async for rows in chunks:
                yield rows


@contextlib.asynccontextmanager
async def _ahead(
    chunks: AsyncGenerator[list, None], depth: int = 2
) -> AsyncIterator[AsyncIterator[list]]:
    """Read ``chunks`` in a task up to ``depth`` chunks ahead of the consumer (bounded memory).

    A reader failure reaches the consumer as that exception; leaving early closes the reader (and
    gives its connection back) before returning."""
    queue: asyncio.Queue[list | Exception | None] = asyncio.Queue(maxsize=depth)  # None: the end

    async def pump() -> None:
        try:
            async with contextlib.aclosing(chunks):
                async for rows in chunks:
                    await queue.put(rows)
        except Exception as exc:
            await queue.put(exc)
        else:
            await queue.put(None)

    task = asyncio.ensure_future(pump())

    async def drain() -> AsyncIterator[list]:
        while (item := await queue.get()) is not None:
            if isinstance(item, Exception):
                raise item
            yield item

    try:
        yield drain()
    finally:
        if not task.done():
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class _Pass:
    """One reconcile pass of one recall: shared encodings, counts, and the stream of new alerts."""

    def __init__(
        self, matcher: Matcher, recall: ev.RecallSnapshot, env: Envelope, engine: AsyncEngine
    ) -> None:
        self.recall = recall
        self.engine = engine
        self.id = str(uuid.uuid4())
        self.started = time.perf_counter()
        self.started_cpu = time.process_time()
        self.now = datetime.now(UTC)
        self.causation_id = env.id
        self.raised_headers: FanOutHeaders | None = (
            None  # built on the first new alert (most re-checks raise none)
        )
        self.recall_content: orjson.Fragment | None = None  # serialised once per pass, likewise
        self.counts = {"raise": 0, "update": 0, "withdraw": 0, "none": 0}
        # Whether customers' label confirmations are to be read for each batch (Matcher.reconcile).
        self.labelled = False
        self.matcher = matcher
        self.sender: KeyedBatchSender | None = None
        # Alerts earlier passes announced without committing their rows (Matcher.reconcile loads
        # them).
        self.announced: dict[str, Announced] = {}
        # The announcements' own connection (autocommit), and the batch whose announcement is being
        # written.
        self.announcer: AsyncConnection | None = None
        self.announcing: tuple[asyncio.Future, list[AlertDraft]] | None = None
        self.announced_batches = 0
        self.writing: asyncio.Task | None = (
            None  # the previous batch's COPY, running while the next is built
        )

    async def write_new(
        self, conn: asyncpg.Connection, rows: list[tuple], background: bool
    ) -> None:
        """Insert new alert rows: in bulk with COPY, in the background while the next batch is
        built. No other transaction inserts alerts of this recall meanwhile: reconcile holds the
        recall's row lock."""
        await self.settle_writes()
        if background:
            self.writing = asyncio.ensure_future(
                conn.copy_records_to_table("alerts", records=rows, columns=_NEW_ALERT_COLUMNS)
            )
        else:
            await conn.executemany(_INSERT_NEW, rows)

    async def settle_writes(self) -> None:
        """Before anything else uses the transaction's connection: the pending COPY must be done."""
        if self.writing is not None:
            writing, self.writing = self.writing, None
            await writing

    async def abandon(self) -> None:
        """The pass failed: stop the pending COPY (the transaction rolls back) and drop unsent
        batches."""
        if self.announcing is not None:
            announcing, self.announcing = self.announcing[0], None
            announcing.cancel()
            await asyncio.wait([announcing])
            if not announcing.cancelled():
                announcing.exception()
        if self.writing is not None:
            writing, self.writing = self.writing, None
            writing.cancel()
            await asyncio.wait(
                [writing]
            )  # without re-raising its error or cancellation: ours is in flight
            if not writing.cancelled():
                writing.exception()  # retrieved, so asyncio does not log it as lost
        if self.sender is not None:
            await self.sender.abandon()

    async def raise_new(self, drafts: list[AlertDraft]) -> None:
        """Brand-new alerts go straight to alerts.v1, each batch only once its announcement is
        committed.

        The announcement of this batch is written in the background while the next batch is built;
        the previous batch, announced by now, is sent first."""
        await self._send_announced()
        if drafts:
            self.announcing = (asyncio.ensure_future(self._announce(drafts)), drafts)
            self.announced_batches += 1

    async def _announce(self, drafts: list[AlertDraft]) -> None:
        if self.announcer is None:
            self.announcer = await self.engine.connect()
        raw = await self.announcer.get_raw_connection()
        # Straight on the driver, outside any transaction: the row commits by itself, before the
        # send.
        await raw.driver_connection.execute(  # type: ignore[union-attr]
            _ANNOUNCE,
            self.recall.recall_id,
            self.recall.version,
            self.id,
            [d.customer_id for d in drafts],
            bytes.fromhex("".join(d.fingerprint for d in drafts)),
            "".join(_TIER_LETTER[d.tier] for d in drafts),
        )

    async def _send_announced(self) -> None:
        if self.announcing is None:
            return
        announcing, drafts = self.announcing
        await announcing
        self.announcing = None
        for draft in drafts:
            await self.stream_raised(draft)

    async def close(self) -> None:
        if self.announcer is not None:
            announcer, self.announcer = self.announcer, None
            await announcer.close()

    async def stream_raised(self, draft: AlertDraft) -> None:
        """A brand-new alert goes straight to alerts.v1 (see Matcher.reconcile for why that is
        safe)."""
        if self.sender is None or self.raised_headers is None or self.recall_content is None:
            self.sender = await KeyedBatchSender(
                self.matcher.producer(), self.matcher.alerts_topic
            ).start()
            self.raised_headers = FanOutHeaders(
                type=ev.AlertRaised.event_type,
                source=self.matcher.outbox.source,
                time=self.now,
                correlation_id=current_correlation_id(),
                causation_id=self.causation_id,
            )
            self.recall_content = orjson.Fragment(self.recall.content.model_dump_json())
        raised_id = event_id(draft.alert_id, 1, self.recall.version, ev.AlertRaised.event_type)
        body = alert_event_body(draft, 1, self.recall_content)
        await self.sender.add(
            draft.customer_id.encode(), body, self.raised_headers(raised_id, draft.alert_id)
        )

    async def flush(self) -> None:
        await self._send_announced()
        await self.settle_writes()
        if self.sender is not None:
            await self.sender.flush()


def _open_row(run: _Pass, draft: AlertDraft, alert_version: int) -> tuple:
    """A new open alert row (columns ``_NEW_ALERT_COLUMNS``), stamped with the pass."""
    return (
        draft.alert_id,
        draft.customer_id,
        run.recall.recall_id,
        run.recall.version,
        alert_version,
        "open",
        draft.tier,
        draft.fingerprint,
        len(draft.affected),
        draft.units,
        run.id,
        run.now,
    )


class RecallFollower(Protocol):
    """What else follows a recall's changes in the matcher's transaction (stop-sales, holds):
    called after the alerts are reconciled, with the recall's row locked."""

    async def recall_changed(
        self, session: AsyncSession, recall: ev.RecallSnapshot, env: Envelope
    ) -> None: ...

    async def recall_closed(
        self, session: AsyncSession, event: ev.RecallClosed, env: Envelope
    ) -> None: ...

    async def lines_changed(
        self,
        session: AsyncSession,
        line_ids: list[str],
        recalls: Iterable[ev.RecallSnapshot],
        env: Envelope,
    ) -> None: ...


class Matcher:
    """Reconciles alerts with the purchase index and announces the difference on alerts.v1."""

    def __init__(
        self,
        outbox: Outbox,
        producer: Callable[[], AIOKafkaProducer | None],
        *,
        reader_work_mem: str | None = None,
        metrics: MatcherMetrics | None = None,
    ) -> None:
        self.followers: list[RecallFollower] = []  # the composition root adds them
        self.outbox = outbox
        self.metrics = metrics
        self.reader_work_mem = (
            reader_work_mem  # PostgreSQL work_mem for a whole recall's read (its sort)
        )
        self._producer = producer
        self._snapshots: dict[str, ev.RecallSnapshot] = {}
        self.alerts_topic = outbox.topic_prefix + ev.AlertRaised.topic

    def producer(self) -> AIOKafkaProducer:
        producer = self._producer()
        if producer is None:
            raise RuntimeError("the Kafka producer is not started")
        return producer

    async def reconcile(
        self,
        session: AsyncSession,
        recall: ev.RecallSnapshot,
        env: Envelope,
        customer_ids: Iterable[str] | None = None,
    ) -> dict[str, int]:
        """Bring the alerts of ``recall`` (for the given customers, or all) in line with the
        purchase index.

        Streams the matching lines in customer order through a server-side cursor and settles them
        ``RECONCILE_BATCH`` customers at a time, so memory stays bounded however many customers a
        recall reaches. Every alert this pass confirms is stamped with the pass id; open alerts left
        unstamped at the end are the ones to withdraw.

        New alerts (no row for this customer and recall yet) are the bulk of a publication, a
        million for a big recall; they are produced straight to alerts.v1 with the batch API while
        the pass runs, and the pass returns only after the broker acknowledged all of them, so the
        transaction (alert rows, inbox claim) commits after the events exist. A failure before the
        commit re-runs the pass: the same alerts are raised again with the same deterministic event
        ids, which every consumer's inbox drops. No earlier event of a new alert can be waiting in
        the outbox, so per-alert order holds. Updates, re-raises and withdrawals of existing alerts
        go through the outbox as every other event does.
        """
        only = sorted(set(customer_ids)) if customer_ids is not None else None
        # A whole-recall pass holds the recall's row exclusively, a re-check of some customers
        # shares it: a re-check waits for a running pass (and then sees its alerts), and two passes
        # never interleave.
        await session.execute(
            select(ActiveRecall.recall_id)
            .where(ActiveRecall.recall_id == recall.recall_id)
            .with_for_update(read=only is not None)
        )
        run = _Pass(self, recall, env, _engine_of(session))
        conn = await _driver_connection(session)
        run.announced = await pending_announcements(conn, recall.recall_id, only)
        # A re-check always reads its customers' labels (a confirmation may commit while it waits
        # for their alert rows); a whole pass only when the recall has any, which none can add
        # while it holds the recall's row (on_label_confirmed shares that lock first).
        run.labelled = only is not None or bool(await conn.fetchval(_ANY_LABEL, recall.recall_id))
        query = matching_lines_sql(recall, only is not None)
        try:
            if query is not None:
                # A recall without any alert yet (a publication) needs no per-batch lookup of
                # existing ones.
                fresh = only is None and not await session.scalar(
                    select(exists().where(Alert.recall_id == recall.recall_id))
                )
                sql, params = query
                if only is not None:
                    # One customer's re-check: a few rows, all on the transaction's connection.
                    params.append(only)
                    chunks = _fetch_chunks(conn, sql, params)
                    await self._stream(session, conn, run, chunks, fresh, background=False)
                else:
                    # A whole recall: lines are read on a second connection (its own read-only
                    # snapshot) ahead of the writer, so PostgreSQL reads, PostgreSQL writes and this
                    # process's encoding overlap.
                    reading = _read_on_own_connection(session, sql, params, self.reader_work_mem)
                    async with _ahead(reading) as ahead:
                        await self._stream(session, conn, run, ahead, fresh, background=True)
            if run.announced:  # announced customers none of whose lines the recall reaches any more
                await self._catch_up_unseen(session, conn, run)
            await run.flush()
        except BaseException:
            await run.abandon()
            raise
        finally:
            await run.close()
        # Every announcement settled by this pass is settled when it commits (each such customer has
        # a row by then); a whole pass settles its recall's, a re-check those of its customers.
        if only is None:
            await conn.execute(
                "DELETE FROM alert_announcements WHERE recall_id = $1", recall.recall_id
            )
        elif run.announced_batches:
            await conn.execute("DELETE FROM alert_announcements WHERE pass_id = $1", run.id)
        stale = select(Alert).where(
            Alert.recall_id == recall.recall_id,
            Alert.status == "open",
            Alert.reconcile_pass.is_distinct_from(run.id),
        )
        if only is not None:
            stale = stale.where(Alert.customer_id.in_(only))
        while (
            True
        ):  # withdraw in batches; each batch is stamped as it is withdrawn, so the loop ends
            left = list(
                (await session.execute(stale.limit(RECONCILE_BATCH).with_for_update())).scalars()
            )
            if not left:
                break
            await self._withdraw(session, recall, env, left, run.id)
            run.counts["withdraw"] += len(left)
        if only is None:  # a whole recall (not one customer's re-check): worth a line in the log
            log.info(
                "reconciled recall",
                extra={
                    "recall_id": recall.recall_id,
                    "recall_version": recall.version,
                    **run.counts,
                    "seconds": round(time.perf_counter() - run.started, 3),
                    "cpu_seconds": round(time.process_time() - run.started_cpu, 3),
                },
            )
        if self.metrics is not None:
            self.metrics.count_pass(session, run.counts)
        return run.counts

    async def _stream(
        self,
        session: AsyncSession,
        conn: asyncpg.Connection,
        run: _Pass,
        chunks: AsyncIterator[list],
        fresh: bool,
        *,
        background: bool,
    ) -> None:
        """Group the lines (in customer order) into batches of ``RECONCILE_BATCH`` customers and
        settle each."""
        batch: dict[str, list[Line]] = {}
        async for rows in chunks:
            for row in rows:
                customer_id = row[_CUSTOMER]
                lines = batch.get(customer_id)
                if lines is None:
                    if len(batch) >= RECONCILE_BATCH:
                        await self._settle(session, conn, run, batch, fresh, background)
                        batch = {}
                    batch[customer_id] = [Line(*row)]
                else:
                    lines.append(Line(*row))
        if batch:
            await self._settle(session, conn, run, batch, fresh, background)

    async def _settle(
        self,
        session: AsyncSession,
        conn: asyncpg.Connection,
        run: _Pass,
        batch: dict[str, list[Line]],
        fresh: bool,
        background: bool,
    ) -> None:
        recall = run.recall
        existing = {}
        if not fresh:
            await run.settle_writes()
            # One array parameter, not one bind per customer: the statement stays the same for every
            # batch.
            existing = {
                r["customer_id"]: r
                for r in await conn.fetch(_EXISTING, recall.recall_id, list(batch))
            }
        labels: dict[str, LabelFacts] = {}
        if run.labelled:  # read after the alert rows are locked: see Matcher.on_label_confirmed
            await run.settle_writes()
            labels = await labels_of(conn, recall.recall_id, list(batch))
        new_rows: list[tuple] = []
        changed_rows: list[tuple] = []
        unchanged: list[str] = []
        events: list[tuple[ev.Event, str | None]] = []
        raised: list[AlertDraft] = []
        for customer_id, lines in batch.items():
            row = existing.get(customer_id)
            if row is None and run.announced:
                announced = run.announced.pop(customer_id, None)
                if announced is not None:
                    draft = build_alert(recall, customer_id, lines, labels.get(customer_id))
                    resend = self._catch_up(run, customer_id, announced, draft, new_rows, events)
                    if resend and draft is not None:
                        raised.append(draft)
                    continue
            prev = (
                Previous(
                    row["alert_version"], row["status"], row["fingerprint"], row["recall_version"]
                )
                if row
                else None
            )
            draft = build_alert(recall, customer_id, lines, labels.get(customer_id))
            change = decide(prev, draft, recall.version)
            if change == "withdraw":
                continue  # still open and unstamped: the withdrawal sweep takes it
            run.counts[change] += 1
            if change == "none":
                if row is not None:
                    unchanged.append(customer_id)
                continue
            assert draft is not None
            version = next_version(prev, draft)
            units = draft.units
            if prev is None:
                raised.append(draft)
                new_rows.append(_open_row(run, draft, version))
                continue
            changed_rows.append(
                (
                    recall.recall_id,
                    customer_id,
                    recall.version,
                    version,
                    draft.tier,
                    draft.fingerprint,
                    len(draft.affected),
                    units,
                    run.id,
                )
            )
            state = ev.AlertState.model_validate(draft.document(version))
            event: ev.Event = (
                ev.AlertRaised(alert=state) if change == "raise" else ev.AlertUpdated(alert=state)
            )
            events.append(
                (event, event_id(state.alert_id, version, recall.version, event.event_type))
            )
        if changed_rows or unchanged or events:
            await run.settle_writes()
        if changed_rows:
            await conn.executemany(_REOPEN_OR_UPDATE, changed_rows)
        if unchanged:
            await conn.execute(
                "UPDATE alerts SET reconcile_pass = $1 "
                "WHERE recall_id = $2 AND customer_id = ANY($3::text[])",
                run.id,
                recall.recall_id,
                unchanged,
            )
        if events:
            await self.outbox.add_many(session, events, causation_id=run.causation_id)
        if new_rows:
            await run.write_new(conn, new_rows, background)
        await run.raise_new(raised)

    def _catch_up(
        self,
        run: _Pass,
        customer_id: str,
        announced: Announced,
        draft: AlertDraft | None,
        new_rows: list[tuple],
        events: list[tuple[ev.Event, str | None]],
    ) -> bool:
        """An alert an earlier pass announced without committing its row: bring consumers in line
        with ``draft`` (domain.catch_up) and give it its row. True when it is to be sent again as
        announced."""
        recall = run.recall
        action = catch_up(announced, draft, recall.version)
        if action == "withdraw":
            alert_id = alert_id_for(recall.recall_id, customer_id)
            new_rows.append(
                (
                    alert_id,
                    customer_id,
                    recall.recall_id,
                    recall.version,
                    2,
                    "withdrawn",
                    announced.tier,
                    announced.fingerprint,
                    0,
                    0,
                    run.id,
                    run.now,
                )
            )
            events.append(withdrawal(alert_id, 2, customer_id, recall))
            run.counts["withdraw"] += 1
            return False
        assert draft is not None
        if action == "resend":
            new_rows.append(_open_row(run, draft, 1))
            run.counts["raise"] += 1
            return True
        version = next_version(announced.previous, draft)
        new_rows.append(_open_row(run, draft, version))
        state = ev.AlertState.model_validate(draft.document(version))
        updated = ev.AlertUpdated(alert=state)
        events.append(
            (updated, event_id(state.alert_id, version, recall.version, updated.event_type))
        )
        run.counts["update"] += 1
        return False

    async def _catch_up_unseen(
        self, session: AsyncSession, conn: asyncpg.Connection, run: _Pass
    ) -> None:
        """Announced alerts of customers the recall's lines no longer reach at all: withdrawn."""
        new_rows: list[tuple] = []
        events: list[tuple[ev.Event, str | None]] = []
        for customer_id, announced in sorted(run.announced.items()):
            self._catch_up(run, customer_id, announced, None, new_rows, events)
        run.announced = {}
        await run.write_new(conn, new_rows, background=False)
        await self.outbox.add_many(session, events, causation_id=run.causation_id)

    async def _withdraw(
        self,
        session: AsyncSession,
        recall: ev.RecallSnapshot,
        env: Envelope,
        rows: list[Alert],
        pass_id: str,
    ) -> None:
        events: list[tuple[ev.Event, str | None]] = []
        for row in rows:
            row.status = "withdrawn"
            row.alert_version += 1
            row.recall_version = recall.version
            row.reconcile_pass = pass_id
            events.append(withdrawal(row.alert_id, row.alert_version, row.customer_id, recall))
        await session.flush()
        await self.outbox.add_many(session, events, causation_id=env.id)

    # ------------------------------------------------------------------ recalls.v1

    async def _store_recall(
        self, session: AsyncSession, snap: ev.RecallSnapshot, status: str
    ) -> None:
        values = {
            "recall_id": snap.recall_id,
            "version": snap.version,
            "status": status,
            "snapshot": snap.model_dump(mode="json"),
            "published_at": snap.published_at,
        }
        stmt = insert(ActiveRecall).values(**values)
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=[ActiveRecall.recall_id], set_={k: stmt.excluded[k] for k in values}
            )
        )
        await session.execute(
            delete(RecallIdentifier).where(RecallIdentifier.recall_id == snap.recall_id)
        )
        if status != "active":
            self._snapshots.pop(snap.recall_id, None)
        if status == "active":
            rows = [
                {"kind": kind, "value": v, "recall_id": snap.recall_id}
                for kind, values in recall_identifiers(snap).items()
                for v in values
            ]
            if rows:
                await session.execute(insert(RecallIdentifier), rows)

    async def on_recall_changed(
        self, session: AsyncSession, event: ev.RecallPublished | ev.RecallAmended, env: Envelope
    ) -> None:
        snap = event.recall
        await _lock_for_pass(session)
        current = await session.get(ActiveRecall, snap.recall_id, with_for_update=True)
        if current is not None and (current.version > snap.version or current.status == "closed"):
            return  # an older version, or a recall already closed: nothing to do
        await self._store_recall(session, snap, "active")
        await self.reconcile(session, snap, env)
        for follower in self.followers:
            await follower.recall_changed(session, snap, env)

    async def on_recall_closed(
        self, session: AsyncSession, event: ev.RecallClosed, env: Envelope
    ) -> None:
        snap = event.recall
        current = await session.get(ActiveRecall, snap.recall_id, with_for_update=True)
        if current is not None and current.status == "closed":
            return
        await self._store_recall(session, snap, "closed")
        # In batches, through the outbox (an earlier event of these alerts may still wait there).
        close = text(
            "UPDATE alerts SET status = 'closed', updated_at = now() "
            "WHERE recall_id = :rid AND customer_id IN (SELECT customer_id FROM alerts "
            "WHERE recall_id = :rid AND status = 'open' ORDER BY customer_id LIMIT :n FOR UPDATE) "
            "RETURNING alert_id, customer_id"
        )
        while rows := (
            await session.execute(close, {"rid": snap.recall_id, "n": RECONCILE_BATCH})
        ).all():
            events: list[tuple[ev.Event, str | None]] = []
            for alert_id, customer_id in rows:
                closed = ev.AlertClosed(
                    alert_id=alert_id,
                    customer_id=customer_id,
                    recall_id=snap.recall_id,
                    closed_at=event.closed_at,
                )
                events.append((closed, event_id(alert_id, closed.event_type)))
            await self.outbox.add_many(session, events, causation_id=env.id)
        await self._close_announced(session, event, env)
        for follower in self.followers:
            await follower.recall_closed(session, event, env)

    async def _close_announced(
        self, session: AsyncSession, event: ev.RecallClosed, env: Envelope
    ) -> None:
        """Alerts a failed pass announced without a row are closed too (consumers may hold them
        open); they get their row, and the recall's announcements are settled."""
        snap = event.recall
        conn = await _driver_connection(session)
        pending = await pending_announcements(conn, snap.recall_id, None)
        rows: list[tuple] = []
        events: list[tuple[ev.Event, str | None]] = []
        now = datetime.now(UTC)
        for customer_id, announced in sorted(pending.items()):
            alert_id = alert_id_for(snap.recall_id, customer_id)
            rows.append(
                (
                    alert_id,
                    customer_id,
                    snap.recall_id,
                    announced.recall_version,
                    1,
                    "closed",
                    announced.tier,
                    announced.fingerprint,
                    0,
                    0,
                    None,
                    now,
                )
            )
            closed = ev.AlertClosed(
                alert_id=alert_id,
                customer_id=customer_id,
                recall_id=snap.recall_id,
                closed_at=event.closed_at,
            )
            events.append((closed, event_id(alert_id, closed.event_type)))
        if rows:
            await conn.executemany(_INSERT_NEW, rows)
            await self.outbox.add_many(session, events, causation_id=env.id)
        await conn.execute("DELETE FROM alert_announcements WHERE recall_id = $1", snap.recall_id)

    # ------------------------------------------------------------------ orders.v1

    async def _recalls_reaching(
        self, session: AsyncSession, customer_id: str, lines: list[Line]
    ) -> list[ev.RecallSnapshot]:
        """Active recalls naming an identifier of these lines, or with an open alert for this
        customer."""
        wanted = [(kind, values) for kind, values in line_identifiers(lines).items() if values]
        by_identifier = select(RecallIdentifier.recall_id).where(
            or_(
                false(),
                *(
                    and_(RecallIdentifier.kind == kind, RecallIdentifier.value.in_(values))
                    for kind, values in wanted
                ),
            )
        )
        with_alerts = select(Alert.recall_id).where(
            Alert.customer_id == customer_id, Alert.status == "open"
        )
        rows = (
            await session.execute(
                select(ActiveRecall.recall_id, ActiveRecall.version, ActiveRecall.snapshot)
                .where(
                    ActiveRecall.status == "active",
                    ActiveRecall.recall_id.in_(by_identifier.union(with_alerts)),
                )
                .order_by(ActiveRecall.recall_id)
            )
        ).all()
        return [self.snapshot(r.recall_id, r.version, r.snapshot) for r in rows]

    def snapshot(self, recall_id: str, version: int, stored: dict) -> ev.RecallSnapshot:
        """Recall versions never change, so each is validated once per process."""
        cached = self._snapshots.get(recall_id)
        if cached is None or cached.version != version:
            cached = self._snapshots[recall_id] = ev.RecallSnapshot.model_validate(stored)
        return cached

    async def _recheck_customer(
        self, session: AsyncSession, customer_id: str, lines: list[Line], env: Envelope
    ) -> list[ev.RecallSnapshot]:
        """Reconcile this customer's alert for every active recall that could reach one of the
        changed lines or already has an alert for them."""
        await _lock_for_recheck(session)
        recalls = await self._recalls_reaching(session, customer_id, lines)
        for recall in recalls:
            await self.reconcile(session, recall, env, customer_ids=[customer_id])
        for follower in self.followers:
            await follower.lines_changed(session, [line.line_id for line in lines], recalls, env)
        return recalls

    async def on_order_placed(
        self, session: AsyncSession, event: ev.OrderPlaced, env: Envelope
    ) -> None:
        lines = await self._insert_placed(session, [event])
        recalls = await self._recheck_customer(session, event.customer_id, lines, env)
        await self._sales_after_recall(session, event, lines, recalls, env)

    async def on_orders_placed(
        self, session: AsyncSession, deliveries: Sequence[Delivery[ev.OrderPlaced]]
    ) -> None:
        """on_order_placed for a run: every order's lines in one statement, then each recall that
        reaches any of them reconciled once for all the run's customers it reaches, not once per
        order. An alert ends as the orders one by one would leave it (it follows the customer's
        lines alone); a customer with two orders in the run gets one alert event, not two."""
        env = deliveries[0].envelope  # causation of the run's alerts; their ids are their own
        events = [d.event for d in deliveries]
        lines = await self._insert_placed(session, events)
        by_customer: dict[str, list[Line]] = {}
        for line in lines:
            by_customer.setdefault(line.customer_id, []).append(line)
        reaching: dict[str, list[ev.RecallSnapshot]] = {}
        customers_of: dict[str, tuple[ev.RecallSnapshot, list[str]]] = {}
        await _lock_for_recheck(session)
        for customer_id, own in by_customer.items():
            reaching[customer_id] = await self._recalls_reaching(session, customer_id, own)
            for recall in reaching[customer_id]:
                customers_of.setdefault(recall.recall_id, (recall, []))[1].append(customer_id)
        for recall_id in sorted(customers_of):  # in recall order, as one customer's re-check
            recall, customer_ids = customers_of[recall_id]
            await self.reconcile(session, recall, env, customer_ids=customer_ids)
        for customer_id, own in by_customer.items():
            for follower in self.followers:
                await follower.lines_changed(
                    session, [line.line_id for line in own], reaching[customer_id], env
                )
        for d in deliveries:
            own = by_customer[d.event.customer_id]
            placed = [line for line in own if line.order_id == d.event.order_id]
            await self._sales_after_recall(
                session, d.event, placed, reaching[d.event.customer_id], d.envelope
            )

    async def _insert_placed(
        self, session: AsyncSession, events: Sequence[ev.OrderPlaced]
    ) -> list[Line]:
        # Placed, so awaiting shipment (a backfill of history shares order_line_rows, not this).
        rows = [
            {**row, "awaiting_shipment": True} for event in events for row in order_line_rows(event)
        ]
        for chunk in statement_chunks(rows):
            await session.execute(
                insert(PurchaseLine)
                .values(list(chunk))
                .on_conflict_do_nothing(index_elements=["line_id"])
            )
        return [Line(**{f: r[f] for f in Line._fields}) for r in rows]

    async def _sales_after_recall(
        self,
        session: AsyncSession,
        event: ev.OrderPlaced,
        lines: list[Line],
        recalls: list[ev.RecallSnapshot],
        env: Envelope,
    ) -> None:
        """An order placed after a recall it falls under was published: an incident per line."""
        for recall in recalls:
            if event.placed_at <= recall.published_at:
                continue
            for line in lines:
                if line_tier(recall.rules, line):
                    incident = ev.SaleAfterRecallDetected(
                        recall_id=recall.recall_id,
                        recall_version=recall.version,
                        customer_id=event.customer_id,
                        order_id=event.order_id,
                        line_id=line.line_id,
                        product_id=line.product_id,
                        seller_id=line.seller_id,
                        placed_at=event.placed_at,
                        recall_published_at=recall.published_at,
                    )
                    await self.outbox.add(
                        session,
                        incident,
                        causation_id=env.id,
                        event_id=sale_event_id(recall.recall_id, line.line_id),
                    )

    async def _changed(
        self, session: AsyncSession, customer_id: str, line_ids: list[str], env: Envelope
    ) -> None:
        columns = [getattr(PurchaseLine, f) for f in Line._fields]
        rows = (
            await session.execute(select(*columns).where(PurchaseLine.line_id.in_(line_ids)))
        ).all()
        await self._recheck_customer(session, customer_id, [Line(*r) for r in rows], env)

    async def on_line_shipped(
        self, session: AsyncSession, event: ev.OrderLineShipped, env: Envelope
    ) -> None:
        learnt = (
            ("lot", event.lot),
            ("serial", event.serial),
            ("manufactured_on", event.manufactured_on),
            ("best_before", event.best_before),
            ("expires_on", event.expires_on),
        )
        values = {k: v for k, v in learnt if v is not None}
        await session.execute(
            update(PurchaseLine)
            .where(PurchaseLine.line_id == event.line_id)
            .values(**values, awaiting_shipment=False)
        )
        await self._changed(session, event.customer_id, [event.line_id], env)

    async def _line_units(
        self, session: AsyncSession, where: ColumnElement[bool]
    ) -> list[LineUnits]:
        """The lines ``where`` selects, locked: a return or cancellation is checked against them."""
        columns = [getattr(PurchaseLine, f) for f in LineUnits._fields]
        rows = await session.execute(select(*columns).where(where).with_for_update())
        return [LineUnits(*r) for r in rows]

    async def on_order_cancelled(
        self, session: AsyncSession, event: ev.OrderCancelled, env: Envelope
    ) -> None:
        named = (
            PurchaseLine.order_id == event.order_id
            if event.line_ids is None
            else PurchaseLine.line_id.in_(event.line_ids)
        )
        known = await self._line_units(session, named)
        reason = cancellation_refusal(known, event.order_id, event.customer_id, event.line_ids)
        if reason:
            raise PermanentError(reason)
        stmt = update(PurchaseLine).where(PurchaseLine.order_id == event.order_id)
        if event.line_ids is not None:
            stmt = stmt.where(PurchaseLine.line_id.in_(event.line_ids))
        result = await session.execute(stmt.values(cancelled=True).returning(PurchaseLine.line_id))
        await self._changed(session, event.customer_id, list(result.scalars()), env)

    async def on_line_returned(
        self, session: AsyncSession, event: ev.OrderLineReturned, env: Envelope
    ) -> None:
        known = await self._line_units(session, PurchaseLine.line_id == event.line_id)
        reason = return_refusal(
            known[0] if known else None, event.order_id, event.customer_id, event.quantity
        )
        if reason:
            raise PermanentError(reason)
        await session.execute(
            update(PurchaseLine)
            .where(PurchaseLine.line_id == event.line_id)
            .values(returned_quantity=PurchaseLine.returned_quantity + event.quantity)
        )
        await self._changed(session, event.customer_id, [event.line_id], env)

    # ------------------------------------------------------------------ remedies.v1

    async def on_label_confirmed(
        self, session: AsyncSession, event: ev.LabelConfirmed, env: Envelope
    ) -> None:
        """The customer's label put the unit in scope (customer-api): keep what it says and
        re-check their alert, which takes it as known (domain.labelled_reach) and so moves to
        confirmed, announced on alerts.v1 as every change is.

        Locks in the order every pass does, the recall's row (shared) before the alert's: an order
        event's re-check of the same customer waits for the alert row and then reads this label."""
        if reason := label_mismatch(event.alert_id, event.recall_id, event.customer_id):
            raise PermanentError(reason)
        recall = (
            await session.execute(
                select(ActiveRecall)
                .where(ActiveRecall.recall_id == event.recall_id)
                .with_for_update(read=True)
            )
        ).scalar_one_or_none()
        await session.execute(
            select(Alert.alert_id)
            .where(Alert.recall_id == event.recall_id, Alert.customer_id == event.customer_id)
            .with_for_update()
        )
        facts = {
            "alert_id": event.alert_id,
            "lot": event.lot,
            "serial": event.serial,
            "manufactured_on": event.manufactured_on,
            "best_before": event.best_before,
            "expires_on": event.expires_on,
            "confirmed_at": event.confirmed_at,
        }
        stmt = insert(LabelConfirmation).values(
            recall_id=event.recall_id, customer_id=event.customer_id, **facts
        )
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=[LabelConfirmation.recall_id, LabelConfirmation.customer_id],
                set_=facts,
                # An older confirmation delivered late does not replace a newer one.
                where=LabelConfirmation.confirmed_at <= stmt.excluded.confirmed_at,
            )
        )
        if recall is None or recall.status != "active":
            return  # kept; a closed recall's alerts change no more
        snap = self.snapshot(recall.recall_id, recall.version, recall.snapshot)
        await self.reconcile(session, snap, env, customer_ids=[event.customer_id])

    def label_handlers(self) -> dict:
        return {ev.LabelConfirmed: self.on_label_confirmed}

    def handlers(self) -> dict:
        return {
            ev.RecallPublished: self.on_recall_changed,
            ev.RecallAmended: self.on_recall_changed,
            ev.RecallClosed: self.on_recall_closed,
            ev.OrderPlaced: batched(self.on_orders_placed),
            ev.OrderLineShipped: self.on_line_shipped,
            ev.OrderCancelled: self.on_order_cancelled,
            ev.OrderLineReturned: self.on_line_returned,
        }
