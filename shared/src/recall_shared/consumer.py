"""The consumer runner: batched, partition-parallel, inbox-deduplicated, never dropping a record.

One Kafka consumer per runner polls; the assigned partitions are worked by one task per slot (at
most ``consumer_max_parallel_partitions`` applying at once), so one slow partition never holds the
others. A slot is a partition number modulo the gcd of the runner's topics' partition counts: topics
keyed alike (by customer id) put one key in the same slot, so a customer's alert and contact are
never applied concurrently by one instance (the order between topics is still not defined). A slot's
worker takes what has arrived, up to ``consumer_batch_max_records``, and:

1. reads each record's envelope: unreadable -> dead letter ``undecodable``; a type this service does
   not handle -> skipped and counted (``events_ignored_total``; a type unknown to this build is also
   logged, once per type and interval: a newer producer may add types); a body failing its schema ->
   dead letter ``invalid``;
2. applies the valid events in ONE database transaction: the inbox claims of the whole batch in one
   statement (redeliveries drop out), then each handler in partition order, consecutive deliveries
   of the same :class:`~recall_shared.handlers.BatchHandler` in one call; then the commit;
3. commits the partition's Kafka offset, explicitly, only after every record before it is applied or
   dead-lettered.

Failures are settled by :mod:`recall_shared.batch`: the infrastructure's are waited out (the
partition pauses and retries with capped, jittered backoff for as long as it takes; ``/readyz``
names the cause), a poison record is isolated by bisection and only it is dead-lettered. A crash
anywhere redelivers from the last committed offset, and the inbox makes the repeats no-ops. On a
rebalance a revoked partition's worker finishes the batch in hand (or abandons a wait) before the
partition moves; no offset is ever committed past uncommitted work.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError
from opentelemetry.trace import Span, SpanKind, StatusCode
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from recall_shared import inbox
from recall_shared.batch import Settler, WaitItOut, backoff_delay
from recall_shared.cancellation import is_failure, suppressed_failures
from recall_shared.db import ping
from recall_shared.dead_letters import DLQ_PREFIX, DeadLetters, Record, redrive
from recall_shared.envelope import Envelope, EnvelopeError, InvalidEvent, parse_as, read_headers
from recall_shared.events import EVENTS_BY_TYPE, Event
from recall_shared.failures import cause_label, describe, is_transient
from recall_shared.handlers import BatchHandler, Delivery, Handler, HandlerMap, PermanentError
from recall_shared.kafka import create_consumer, create_group_consumer
from recall_shared.logging import (
    fields_record,
    lines_together,
    log_context,
    new_correlation_id,
)
from recall_shared.metrics import Metrics
from recall_shared.settings import ServiceSettings
from recall_shared.telemetry import Telemetry, context_of, within
from recall_shared.topics import TopicSpec, dead_letter_topic
from recall_shared.waits import wait_set

log = logging.getLogger(__name__)
# One line per event settled (recall_shared.consumer._log_event); its own logger so an operator can
# route or silence it alone.
event_log = logging.getLogger("recall_shared.events")

__all__ = ["DLQ_PREFIX", "ConsumerRunner", "Handler", "PermanentError", "Record"]

UNKNOWN_TYPE_LOG_INTERVAL_S = 300.0
# How long the "starting positions" line waits for the positions of a new assignment; a partition
# still without one then is logged as null.
STARTING_POSITIONS_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class _Item:
    """A record whose event is valid and handled here."""

    record: Record
    envelope: Envelope
    event: Event
    handler: Handler[Any] | BatchHandler[Any]


def _runs(items: Sequence[_Item]) -> Iterator[tuple[Handler[Any] | BatchHandler[Any], list[_Item]]]:
    """Consecutive items of the same batch handler together; every plain handler's item alone."""
    run: list[_Item] = []
    for item in items:
        if run and (
            not isinstance(item.handler, BatchHandler) or item.handler is not run[0].handler
        ):
            yield run[0].handler, run
            run = []
        run.append(item)
    if run:
        yield run[0].handler, run


def _log_event(
    item: _Item, outcome: str, seconds: float, batch: int, span: Span | None = None
) -> None:
    """The line of one event, after its transaction committed: what it was and what became of it.
    ``duration_ms`` is the time in its handler (a batch handler's whole call, of ``batch``
    deliveries); the trace is its process span's. One per applied event, so made as a fields record
    (about half of ``Logger.info``'s cost for the same line)."""
    if not event_log.isEnabledFor(logging.INFO):
        return
    env, rec = item.envelope, item.record
    fields: dict[str, object] = {
        "event_id": env.id,
        "correlation_id": env.correlation_id,
        "event_type": env.type,
        "topic": rec.topic,
        "partition": rec.partition,
        "offset": rec.offset,
        "outcome": outcome,
        "duration_ms": round(seconds * 1000, 3),
        "batch": batch,
    }
    if span is not None:
        ctx = span.get_span_context()
        fields["trace_id"] = format(ctx.trace_id, "032x")
        fields["span_id"] = format(ctx.span_id, "016x")
    # Its own context: the event's ids, and its span's trace or none (the worker runs in no span).
    event_log.handle(
        fields_record(event_log, logging.INFO, "event handled", fields, own_context=True)
    )


class _PartitionWorker:
    """Applies the records of one slot: the partitions whose number is equal modulo the runner's
    slot count. Topics keyed alike (customer id) put a key on partitions of the same slot, so one
    key's events from several topics are never applied concurrently in one instance."""

    def __init__(self, runner: ConsumerRunner, slot: int) -> None:
        self.runner = runner
        self.slot = slot
        self.queue: deque[Record] = deque()
        self.queued: Counter[TopicPartition] = Counter()
        self.unsettled: dict[
            TopicPartition, int
        ] = {}  # first offset not yet committed, per partition
        self.arrived = asyncio.Event()
        self.halted = (
            asyncio.Event()
        )  # revoked or stopping: finish the batch in hand, abandon a wait
        self.waiting: tuple[str, float] | None = None  # (cause, since) while waiting out a failure
        self.task = asyncio.create_task(self._run(), name=f"{runner.group}-slot-{slot}")

    @property
    def partitions(self) -> set[TopicPartition]:
        return set(self.queued) | set(self.unsettled)

    def add(self, tp: TopicPartition, records: Sequence[Record]) -> None:
        if records:
            self.unsettled.setdefault(tp, records[0].offset)
            self.queue.extend(records)
            self.queued[tp] += len(records)
            self.arrived.set()

    def settled(self, offsets: dict[TopicPartition, int]) -> None:
        for tp, offset in offsets.items():
            if self.queued[tp] > 0:
                self.unsettled[tp] = offset
            else:
                self.unsettled.pop(tp, None)
                del self.queued[tp]

    def halt(self) -> None:
        self.halted.set()
        self.arrived.set()

    async def pause(self, seconds: float) -> bool:
        """Sleep, cut short by a halt; True when halted."""
        return await wait_set(self.halted, seconds)

    async def _run(self) -> None:
        limit = self.runner.settings.consumer_batch_max_records
        while not self.halted.is_set():
            if not self.queue:
                self.arrived.clear()
                await self.arrived.wait()
                continue
            batch = [self.queue.popleft() for _ in range(min(limit, len(self.queue)))]
            for rec in batch:
                self.queued[TopicPartition(rec.topic, rec.partition)] -= 1
            async with self.runner.parallel:
                await self.runner.process_batch(batch, worker=self)


class _Rebalance(ConsumerRebalanceListener):
    def __init__(self, runner: ConsumerRunner) -> None:
        self.runner = runner

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.runner.release(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        log.info("partitions assigned", extra={"partitions": sorted(map(str, assigned))})
        self.runner.log_starting_positions(assigned)


class ConsumerRunner:
    def __init__(
        self,
        *,
        settings: ServiceSettings,
        topics: Sequence[TopicSpec],
        handlers: HandlerMap,
        session_factory: async_sessionmaker[AsyncSession],
        producer: AIOKafkaProducer,
        metrics: Metrics,
        group_suffix: str = "",
        on_applied: Callable[[Record], Awaitable[None]] | None = None,
        telemetry: Telemetry | None = None,
    ) -> None:
        self.settings = settings
        # A span per applied event when tracing is on; no span work at all when it is off.
        self.tracer = telemetry.tracer if telemetry is not None and telemetry.enabled else None
        self.topics = [t.physical(settings.topic_prefix) for t in topics]
        self.slots = math.gcd(*(t.partitions for t in topics)) if topics else 1
        self.handlers: dict[str, tuple[type[Event], Handler[Any] | BatchHandler[Any]]] = {
            cls.event_type: (cls, h) for cls, h in handlers.items()
        }
        self.session_factory = session_factory
        self.producer = producer
        self.metrics = metrics
        self.group = settings.consumer_group_prefix + group_suffix
        self.dead_letter_topic = dead_letter_topic(settings.service_name).physical(
            settings.topic_prefix
        )
        self.dead_letters = DeadLetters(producer, self.dead_letter_topic, self.group, metrics)
        # A fault-injection and observation point: called per applied record after its batch commits
        # and before the offset commit.
        self.on_applied = on_applied
        self.parallel = asyncio.Semaphore(settings.consumer_max_parallel_partitions)
        self.consumer: AIOKafkaConsumer | None = None
        self.running = False
        self._stopping = asyncio.Event()
        self._workers: dict[int, _PartitionWorker] = {}
        self._paused: set[TopicPartition] = set()
        self._connect_error: str | None = None
        self._unknown_logged: dict[str, float] = {}
        self._lag_observed = 0.0
        self._position_logs: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------------ lifecycle

    def stop(self) -> None:
        """Finish the batches in hand, commit what is applied, and return from run()."""
        self._stopping.set()
        for worker in self._workers.values():
            worker.halt()

    async def run(self) -> None:
        attempt = 0
        while not self._stopping.is_set():
            try:
                await self._consume()
                attempt = 0
            except BaseException as exc:
                if not is_failure(exc):
                    raise
                attempt += 1
                delay = backoff_delay(attempt, initial=0.5, cap=10.0)
                self._connect_error = describe(exc)
                log.exception(
                    "consumer failed; restarting", extra={"group": self.group, "retry_in_s": delay}
                )
                await wait_set(self._stopping, delay)

    def health(self) -> str:
        """'ok', or why this runner is not keeping up (for /readyz)."""
        now = time.monotonic()
        waits = [
            f"slot {w.slot} ({', '.join(sorted(f'{tp.topic}[{tp.partition}]' for tp in parts))})"
            f" waiting out {cause} for {now - since:.0f}s"
            for w in self._workers.values()
            if w.waiting
            for (cause, since), parts in [(w.waiting, w.partitions)]
        ]
        if waits:
            return "; ".join(waits)[:500]
        if not self.running and self._connect_error:
            return f"not consuming: {self._connect_error}"
        return "ok"

    async def _consume(self) -> None:
        consumer = create_group_consumer(
            self.settings, self.group, [], max_poll_records=self.settings.consumer_max_poll_records
        )
        consumer.subscribe(self.topics, listener=_Rebalance(self))
        self.consumer = consumer
        await consumer.start()
        self.running = True
        self._connect_error = None
        high_water = 2 * self.settings.consumer_batch_max_records
        try:
            while not self._stopping.is_set():
                self._raise_if_a_worker_died()
                batches = await consumer.getmany(
                    timeout_ms=500, max_records=self.settings.consumer_max_poll_records
                )
                for tp, records in batches.items():
                    slot = tp.partition % self.slots
                    worker = self._workers.get(slot)
                    if worker is None:
                        worker = self._workers[slot] = _PartitionWorker(self, slot)
                    worker.add(tp, [Record.of(r) for r in records])
                    if len(worker.queue) >= high_water and tp not in self._paused:
                        consumer.pause(tp)
                        self._paused.add(tp)
                for tp in list(self._paused):
                    worker = self._workers.get(tp.partition % self.slots)
                    if worker is None or len(worker.queue) < high_water // 2:
                        with contextlib.suppress(IllegalStateError):
                            consumer.resume(tp)
                        self._paused.discard(tp)
                await self._observe_lag(consumer)
        finally:
            self.running = False
            for task in self._position_logs:
                task.cancel()
            everything: set[TopicPartition] = set(self._paused)
            for worker in self._workers.values():
                everything |= worker.partitions
            everything |= {TopicPartition("", slot) for slot in self._workers}  # idle workers too
            try:
                await self.release(everything)
            finally:
                # Always leave the group, even when a worker's crash ends the runner: a member
                # that never leaves holds its partitions until its session times out.
                self.consumer = None
                with suppressed_failures():
                    await consumer.stop()

    def _raise_if_a_worker_died(self) -> None:
        for slot, worker in list(self._workers.items()):
            if worker.task.done():
                del self._workers[slot]
                if worker.task.cancelled():
                    # Only release() cancels a worker, and it drops the worker first: this one
                    # met a stray CancelledError. Restarting the consumer rewinds its partitions.
                    raise RuntimeError(f"the worker of slot {slot} ended cancelled")
                exc = worker.task.exception()
                if exc is not None:
                    raise exc

    async def release(self, partitions: set[TopicPartition]) -> None:
        """Let the workers of these partitions finish the batch in hand (commit included), then drop
        them. A dropped worker's other partitions, still assigned, are rewound to their first
        uncommitted offset, so nothing it had queued is skipped."""
        slots = {tp.partition % self.slots for tp in partitions}
        workers = [self._workers.pop(slot) for slot in slots if slot in self._workers]
        self._paused -= partitions
        for worker in workers:
            worker.halt()
        if not workers:
            return
        tasks = [w.task for w in workers]
        _, pending = await asyncio.wait(tasks, timeout=self.settings.consumer_revoke_timeout_s)
        for task in pending:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        consumer = self.consumer
        if consumer is not None:
            assigned = consumer.assignment()
            for worker in workers:
                for tp, offset in worker.unsettled.items():
                    if tp not in partitions and tp in assigned:
                        consumer.seek(tp, offset)
                        self._paused.discard(tp)
                        with contextlib.suppress(IllegalStateError):
                            consumer.resume(tp)
        for result in results:
            if isinstance(result, BaseException) and not isinstance(
                result, asyncio.CancelledError | Exception
            ):
                raise result  # a crash stand-in (BaseException) in a worker ends the runner

    def log_starting_positions(self, assigned: set[TopicPartition]) -> None:
        """One INFO line per assignment: where each assigned partition starts (the offset of the
        first record it will apply: the group's committed offset, or the earliest one without a
        commit) and the committed offsets the coordinator answers (null: none), so what a restarted
        instance applies again can be counted (the offsets applied before minus ``positions``).
        Logged from a task of its own, off the rebalance, so it never holds the assignment up."""
        consumer = self.consumer
        if consumer is None or not assigned:
            return
        task = asyncio.create_task(self._log_starting_positions(consumer, sorted(assigned)))
        self._position_logs.add(task)
        task.add_done_callback(self._position_logs.discard)

    async def _log_starting_positions(
        self, consumer: AIOKafkaConsumer, partitions: list[TopicPartition]
    ) -> None:
        positions = [asyncio.ensure_future(consumer.position(tp)) for tp in partitions]
        committed = [asyncio.ensure_future(consumer.committed(tp)) for tp in partitions]
        try:
            await asyncio.wait(positions + committed, timeout=STARTING_POSITIONS_TIMEOUT_S)
        finally:
            for future in positions + committed:
                future.cancel()

        def offsets(futures: list[asyncio.Future[Any]]) -> dict[str, int | None]:
            return {
                f"{tp.topic}[{tp.partition}]": (
                    f.result() if f.done() and not f.cancelled() and f.exception() is None else None
                )
                for tp, f in zip(partitions, futures, strict=True)
            }

        log.info(
            "starting positions",
            extra={
                "group": self.group,
                "positions": offsets(positions),
                "committed": offsets(committed),
                # false: some answer did not come in time, its partition shows null
                "complete": all(f.done() and not f.cancelled() for f in positions + committed),
            },
        )

    async def _commit(self, offsets: dict[TopicPartition, int]) -> None:
        consumer = self.consumer
        if consumer is None or not offsets:
            return
        try:
            await consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError) as exc:
            # The partition moved to another member; it redelivers from the last committed offset
            # and the inbox turns the repeats into no-ops.
            log.warning(
                "offset commit refused after rebalance",
                extra={"partitions": sorted(map(str, offsets)), "error": str(exc)},
            )

    async def _observe_lag(self, consumer: AIOKafkaConsumer) -> None:
        now = time.monotonic()
        if now - self._lag_observed < 1.0:
            return
        self._lag_observed = now
        for tp in consumer.assignment():
            hw = consumer.highwater(tp)
            if hw is None:
                continue
            with contextlib.suppress(IllegalStateError):
                pos = await consumer.position(tp)
                self.metrics.consumer_lag.labels(tp.topic, str(tp.partition)).set(max(hw - pos, 0))

    # ------------------------------------------------------------------ one batch

    async def process_batch(
        self, records: Sequence[Record], *, worker: _PartitionWorker | None = None
    ) -> dict[str, int]:
        """Settle a partition's records (see the module's docstring) and, for a partition worker,
        commit the offset after the last. Returns how many were applied, duplicate, ignored or
        dead_lettered. Waits out infrastructure failures until they pass or the worker is halted."""
        outcomes: Counter[str] = Counter()
        bad, items = self._decode(records, outcomes)
        pending: deque[_Item] = deque(items)
        settler: Settler[_Item] = Settler(
            apply=lambda chunk: self._apply(chunk, outcomes),
            dead_letter=lambda item, reason, exc, attempts: self._dead_letter(
                item.record, reason, exc, attempts, outcomes
            ),
            healthy=self._database_healthy,
            max_attempts=self.settings.consumer_max_attempts,
            backoff_initial_s=self.settings.consumer_backoff_initial_s,
            backoff_max_s=self.settings.consumer_backoff_max_s,
            on_failure=self._count_failure,
        )
        offsets: dict[TopicPartition, int] = {}
        for rec in records:  # the next offset of each partition in the batch
            offsets[TopicPartition(rec.topic, rec.partition)] = rec.offset + 1
        wait = 0
        committed = worker is None
        while bad or pending or not committed:
            try:
                while bad:
                    rec, reason, exc = bad[0]
                    await self._dead_letter(rec, reason, exc, 1, outcomes)
                    bad.popleft()
                await settler.settle(pending)
                if not committed and worker is not None:
                    await self._commit(offsets)
                    worker.settled(offsets)
                committed = True
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                cause = exc.cause if isinstance(exc, WaitItOut) else exc
                if not is_transient(cause) and not isinstance(exc, WaitItOut):
                    raise
                wait += 1
                delay = backoff_delay(
                    wait,
                    initial=self.settings.consumer_backoff_initial_s,
                    cap=self.settings.consumer_wait_max_s,
                )
                self.metrics.consumer_waits.labels(cause_label(cause)).inc()
                if worker is not None and worker.waiting is None:
                    worker.waiting = (describe(cause), time.monotonic())
                log.warning(
                    "infrastructure failure; waiting it out",
                    extra={"group": self.group, "cause": describe(cause), "retry_in_s": delay},
                )
                halted = await worker.pause(delay) if worker else await self._pause(delay)
                if halted:
                    return dict(outcomes)  # abandoned: nothing committed past the applied work
        if worker is not None:
            worker.waiting = None
        return dict(outcomes)

    async def _pause(self, seconds: float) -> bool:
        return await wait_set(self._stopping, seconds)

    def _decode(
        self, records: Sequence[Record], outcomes: Counter[str]
    ) -> tuple[deque[tuple[Record, str, BaseException]], list[_Item]]:
        bad: deque[tuple[Record, str, BaseException]] = deque()
        items: list[_Item] = []
        for rec in records:
            try:
                env = read_headers(rec.headers, rec.value)
            except EnvelopeError as exc:
                bad.append((rec, "undecodable", exc))
                continue
            entry = self.handlers.get(env.type)
            if entry is None:
                self._skip(rec, env, outcomes)
                continue
            cls, handler = entry
            try:
                event = parse_as(env, cls)
            except (InvalidEvent, EnvelopeError) as exc:
                bad.append((rec, "invalid", exc))
                continue
            items.append(_Item(rec, env, event, handler))
        return bad, items

    def _skip(self, rec: Record, env: Envelope, outcomes: Counter[str]) -> None:
        """A type this service does not handle: counted; logged when this build does not know it."""
        outcomes["ignored"] += 1
        self.metrics.events_ignored.labels(rec.topic, env.type).inc()
        if event_log.isEnabledFor(logging.DEBUG):  # most records of a shared topic: DEBUG only
            event_log.debug(
                "event handled",
                extra={
                    "event_id": env.id,
                    "correlation_id": env.correlation_id,
                    "event_type": env.type,
                    "topic": rec.topic,
                    "outcome": "ignored",
                },
            )
        if env.type in EVENTS_BY_TYPE:
            return  # a known type meant for other consumers of the topic
        now = time.monotonic()
        if now - self._unknown_logged.get(env.type, -UNKNOWN_TYPE_LOG_INTERVAL_S) >= (
            UNKNOWN_TYPE_LOG_INTERVAL_S
        ):
            self._unknown_logged[env.type] = now
            log.warning(
                "skipping events of a type this build does not know (a newer producer?)",
                extra={"event_type": env.type, "topic": rec.topic, "event_id": env.id},
            )

    async def _apply(self, chunk: Sequence[_Item], outcomes: Counter[str]) -> None:
        started = time.perf_counter()
        ids = list(dict.fromkeys(item.envelope.id for item in chunk))
        # (item, seconds in its handler, deliveries in that handler call) for the event lines
        timings: list[tuple[_Item, float, int]] = []
        # id(item) -> its process span, when tracing; the batch's claim is under the first's
        spans = {id(item): self._process_span(item) for item in chunk} if self.tracer else {}
        try:
            # The transaction's own statements (claim, flushes, commit) under the first's span.
            with within(spans.get(id(chunk[0]))):
                todo = await self._apply_in_transaction(chunk, ids, spans, timings)
        except BaseException as exc:
            for span in spans.values():
                span.set_status(StatusCode.ERROR, repr(exc)[:200])
                span.end()
            raise
        for span in spans.values():
            span.end()
        elapsed = time.perf_counter() - started
        # Under each topic the chunk holds (a slot's chunk mixes the topics keyed alike): its
        # records in it, and the transaction's time.
        for topic, n in Counter(item.record.topic for item in chunk).items():
            self.metrics.handle_seconds.labels(topic).observe(elapsed)
            self.metrics.batch_size.labels(topic).observe(n)
        consumed: Counter[tuple[str, str]] = Counter()
        with lines_together():  # the batch's event lines in one write
            if len(todo) < len(chunk):
                applied = {id(item) for item in todo}
                dropped = [item for item in chunk if id(item) not in applied]
                # Per record's own topic: a slot's chunk mixes the topics keyed alike.
                for dropped_topic, n in Counter(item.record.topic for item in dropped).items():
                    self.metrics.events_duplicate.labels(dropped_topic).inc(n)
                outcomes["duplicate"] += len(dropped)
                for item in dropped:
                    _log_event(item, "duplicate", 0.0, 1)
            for item, took, batch in timings:
                consumed[(item.record.topic, item.envelope.type)] += 1
                _log_event(item, "applied", took, batch, spans.get(id(item)))
        for (topic_name, event_type), n in consumed.items():
            self.metrics.events_consumed.labels(topic_name, event_type).inc(n)
        outcomes["applied"] += len(todo)
        if self.on_applied is not None:
            for item in todo:
                await self.on_applied(item.record)

    async def _apply_in_transaction(
        self,
        chunk: Sequence[_Item],
        ids: list[str],
        spans: dict[int, Span],
        timings: list[tuple[_Item, float, int]],
    ) -> list[_Item]:
        """Claim the batch in the inbox and run its handlers, in one transaction; returns the
        items applied (the others were duplicates)."""
        async with self.session_factory() as session, session.begin():
            fresh = await inbox.claim_many(session, self.group, ids)
            todo: list[_Item] = []
            for item in chunk:
                if item.envelope.id in fresh:
                    fresh.discard(item.envelope.id)  # the first of repeats within the batch
                    todo.append(item)
                elif spans:
                    spans[id(item)].set_attribute("recall_alerts.outcome", "duplicate")
            for handler, run in _runs(todo):
                # Each handler sees the rows as the previous ones left them, not objects the
                # session loaded before another handler changed them with plain SQL. Flushed
                # first: expiring an object discards its unflushed changes.
                await session.flush()
                session.expire_all()
                if isinstance(handler, BatchHandler):
                    began = time.perf_counter()
                    # A batch's own work (statements, events it writes) is under the span of
                    # its first delivery.
                    with (
                        within(spans.get(id(run[0]))),
                        log_context(correlation_id=run[0].envelope.correlation_id),
                    ):
                        await handler.handle_many(
                            session, [Delivery(i.event, i.envelope) for i in run]
                        )
                    took = time.perf_counter() - began
                    timings.extend((item, took, len(run)) for item in run)
                    continue
                for n, item in enumerate(run):
                    if n:
                        await session.flush()
                        session.expire_all()
                    env = item.envelope
                    began = time.perf_counter()
                    with (
                        within(spans.get(id(item))),
                        log_context(
                            correlation_id=env.correlation_id or new_correlation_id(),
                            event_id=env.id,
                        ),
                    ):
                        await handler(session, item.event, env)
                    timings.append((item, time.perf_counter() - began, 1))
        return todo

    def _process_span(self, item: _Item) -> Span:
        """The consumer span of one event: a child of the span that published it (the trace
        context of its record), or a new trace when the record has none."""
        assert self.tracer is not None
        rec, env = item.record, item.envelope
        return self.tracer.start_span(
            f"process {rec.topic}",
            context=context_of(env.trace_context),
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "kafka",
                "messaging.operation.type": "process",
                "messaging.destination.name": rec.topic,
                "messaging.destination.partition.id": str(rec.partition),
                "messaging.kafka.offset": rec.offset,
                "messaging.message.id": env.id,
                "messaging.consumer.group.name": self.group,
                "cloudevents.event_type": env.type,
            },
        )

    async def _dead_letter(
        self, rec: Record, reason: str, exc: BaseException, attempts: int, outcomes: Counter[str]
    ) -> None:
        await self.dead_letters.publish(rec, reason, exc, attempts)
        outcomes["dead_lettered"] += 1

    def _count_failure(self, chunk: Sequence[_Item], exc: BaseException) -> None:
        self.metrics.events_failed.labels(chunk[0].record.topic).inc()
        if len(chunk) == 1 and not is_transient(exc):
            log.warning(
                "event handling failed",
                extra={
                    "event_id": chunk[0].envelope.id,
                    "event_type": chunk[0].envelope.type,
                    "error": repr(exc)[:500],
                },
            )

    async def _database_healthy(self) -> bool:
        async with self.session_factory() as session:
            try:
                await asyncio.wait_for(ping(session.bind), timeout=5)  # type: ignore[arg-type]
            except Exception:
                return False
        return True

    # ------------------------------------------------------------------ tools

    async def process(self, rec: Record) -> str:
        """Settle one record (a test and tooling entry point); returns what happened to it."""
        outcomes = await self.process_batch([rec])
        return next(iter(outcomes), "abandoned")

    async def redrive_dead_letters(self, *, limit: int | None = None) -> dict[str, int]:
        """Put this runner's dead letters back through its handlers (see dead_letters.redrive)."""
        consumer = create_consumer(self.settings, self.redrive_group, [])
        await consumer.start()
        try:
            return await redrive(
                consumer,
                self.dead_letter_topic,
                group=self.group,
                original_topics=self.topics,
                process=self.process_batch,
                limit=limit,
            )
        finally:
            with contextlib.suppress(Exception):
                await consumer.stop()

    @property
    def redrive_group(self) -> str:
        return self.group + ".redrive"


async def redrive_dead_letters(
    runner: ConsumerRunner, *, idle_timeout_s: float = 3.0, limit: int | None = None
) -> dict[str, int]:
    """Redrive one runner's letters (kept for callers of the earlier function; idle_timeout_s
    unused: the redrive stops at the end offsets taken when it starts)."""
    return await runner.redrive_dead_letters(limit=limit)
