"""The consumer runner: inbox-deduplicated handling, explicit offset commits, retries and dead letters.

For each record, in partition order:
1. read the CloudEvents envelope; unreadable -> dead letter (``undecodable``);
2. types this service does not handle are skipped (a newer producer may add types);
3. validate against the event model; invalid -> dead letter (``invalid``);
4. in ONE database transaction: claim the event id in the inbox (a redelivery stops here) and run the
   handler; on an exception retry with exponential backoff, then dead letter (``failed``); a handler may
   raise :class:`PermanentError` to dead-letter at once (``rejected``).
The partition's offset is committed explicitly only after every record of the batch is applied or
dead-lettered. A crash anywhere before that redelivers, and the inbox makes the redelivery a no-op.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from recall_shared import inbox
from recall_shared.envelope import Envelope, EnvelopeError, InvalidEvent, parse, read_headers
from recall_shared.events import Event
from recall_shared.handlers import Handler, PermanentError
from recall_shared.kafka import create_consumer
from recall_shared.logging import log_context, new_correlation_id
from recall_shared.metrics import Metrics
from recall_shared.settings import ServiceSettings
from recall_shared.topics import TopicSpec, dead_letter_topic

log = logging.getLogger(__name__)


DLQ_PREFIX = "dlq_"


@dataclass
class Record:
    """The parts of a Kafka record the runner needs (also rebuilt from a dead letter on redrive)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]] = field(default_factory=list)

    @classmethod
    def of(cls, rec: object) -> Record:
        return cls(
            rec.topic, rec.partition, rec.offset, rec.key, rec.value, list(rec.headers or ())
        )  # type: ignore[attr-defined]


class ConsumerRunner:
    def __init__(
        self,
        *,
        settings: ServiceSettings,
        topics: Sequence[TopicSpec],
        handlers: Mapping[type[Event], Handler],
        session_factory: async_sessionmaker[AsyncSession],
        producer: AIOKafkaProducer,
        metrics: Metrics,
        group_suffix: str = "",
        on_applied: Callable[[Record], Awaitable[None]] | None = None,
    ) -> None:
        self.settings = settings
        self.topics = [t.physical(settings.topic_prefix) for t in topics]
        self.handlers: dict[str, tuple[type[Event], Handler]] = {
            cls.event_type: (cls, h) for cls, h in handlers.items()
        }
        self.session_factory = session_factory
        self.producer = producer
        self.metrics = metrics
        self.group = settings.consumer_group_prefix + group_suffix
        self.dead_letter_topic = dead_letter_topic(settings.service_name).physical(
            settings.topic_prefix
        )
        self.on_applied = (
            on_applied  # a fault-injection and observation point: after the effect commits
        )
        self._stopping = asyncio.Event()
        self.consumer: AIOKafkaConsumer | None = None
        self.running = False

    # ------------------------------------------------------------------ lifecycle

    def stop(self) -> None:
        """Finish the record in hand, commit what is applied, and return from run()."""
        self._stopping.set()

    async def run(self) -> None:
        backoff = 0.5
        while not self._stopping.is_set():
            try:
                await self._consume()
                backoff = 0.5
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception(
                    "consumer failed; restarting",
                    extra={"group": self.group, "retry_in_s": backoff},
                )
                await self._sleep(backoff)
                backoff = min(backoff * 2, 10.0)

    async def _consume(self) -> None:
        consumer = create_consumer(self.settings, self.group, self.topics)
        self.consumer = consumer
        await consumer.start()
        self.running = True
        try:
            while not self._stopping.is_set():
                batches = await consumer.getmany(
                    timeout_ms=500, max_records=self.settings.consumer_max_poll_records
                )
                for tp, records in batches.items():
                    next_offset = None
                    for rec in records:
                        if self._stopping.is_set():
                            break
                        await self.process(Record.of(rec))
                        next_offset = rec.offset + 1
                    if next_offset is not None:
                        await self._commit(consumer, tp, next_offset)
                await self._observe_lag(consumer)
        finally:
            self.running = False
            self.consumer = None
            with contextlib.suppress(Exception):
                await consumer.stop()

    async def _commit(self, consumer: AIOKafkaConsumer, tp: TopicPartition, offset: int) -> None:
        try:
            await consumer.commit({tp: offset})
        except (CommitFailedError, IllegalStateError) as exc:
            # The partition moved to another member during the batch; it will redeliver from the last
            # committed offset and the inbox turns the repeats into no-ops.
            log.warning(
                "offset commit refused after rebalance",
                extra={"partition": str(tp), "error": str(exc)},
            )

    async def _observe_lag(self, consumer: AIOKafkaConsumer) -> None:
        for tp in consumer.assignment():
            hw = consumer.highwater(tp)
            if hw is None:
                continue
            with contextlib.suppress(IllegalStateError):
                pos = await consumer.position(tp)
                self.metrics.consumer_lag.labels(tp.topic, str(tp.partition)).set(max(hw - pos, 0))

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    # ------------------------------------------------------------------ one record

    async def process(self, rec: Record) -> str:
        """Apply one record; returns what happened: applied, duplicate, ignored or dead_lettered."""
        try:
            env = read_headers(rec.headers, rec.value)
        except EnvelopeError as exc:
            await self.dead_letter(rec, "undecodable", exc)
            return "dead_lettered"
        with log_context(
            correlation_id=env.correlation_id or new_correlation_id(), event_id=env.id
        ):
            entry = self.handlers.get(env.type)
            if entry is None:
                self.metrics.events_ignored.labels(rec.topic, env.type).inc()
                return "ignored"
            cls, handler = entry
            try:
                event = parse(env, {env.type: cls})
            except (InvalidEvent, EnvelopeError) as exc:
                await self.dead_letter(rec, "invalid", exc)
                return "dead_lettered"
            return await self._apply(rec, env, event, handler)

    async def _apply(self, rec: Record, env: Envelope, event: Event, handler: Handler) -> str:
        delay = self.settings.consumer_backoff_initial_s
        for attempt in range(1, self.settings.consumer_max_attempts + 1):
            started = time.perf_counter()
            try:
                async with self.session_factory() as session, session.begin():
                    if not await inbox.claim(session, self.group, env.id):
                        self.metrics.events_duplicate.labels(rec.topic).inc()
                        return "duplicate"
                    await handler(session, event, env)
            except asyncio.CancelledError:
                raise
            except PermanentError as exc:
                await self.dead_letter(rec, "rejected", exc, attempts=attempt)
                return "dead_lettered"
            except Exception as exc:
                self.metrics.events_failed.labels(rec.topic).inc()
                if attempt >= self.settings.consumer_max_attempts:
                    log.exception(
                        "event failed after %d attempts; dead-lettering",
                        attempt,
                        extra={"event_type": env.type},
                    )
                    await self.dead_letter(rec, "failed", exc, attempts=attempt)
                    return "dead_lettered"
                log.warning(
                    "event handling failed; retrying",
                    extra={
                        "event_type": env.type,
                        "attempt": attempt,
                        "retry_in_s": delay,
                        "error": repr(exc),
                    },
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.settings.consumer_backoff_max_s)
                continue
            self.metrics.handle_seconds.labels(rec.topic).observe(time.perf_counter() - started)
            self.metrics.events_consumed.labels(rec.topic, env.type).inc()
            if self.on_applied is not None:
                await self.on_applied(rec)
            return "applied"
        raise AssertionError("unreachable")

    async def dead_letter(
        self, rec: Record, reason: str, error: BaseException, attempts: int = 1
    ) -> None:
        """Park the record, with its origin and the error, on the service's dead-letter topic.

        Awaited to the broker's acknowledgement before the offset moves on: nothing is dropped.
        """
        headers = [(k, v) for k, v in rec.headers if not k.startswith(DLQ_PREFIX)]
        headers += [
            ("dlq_reason", reason.encode()),
            ("dlq_error", f"{type(error).__name__}: {error}"[:4000].encode()),
            ("dlq_original_topic", rec.topic.encode()),
            ("dlq_original_partition", str(rec.partition).encode()),
            ("dlq_original_offset", str(rec.offset).encode()),
            ("dlq_consumer_group", self.group.encode()),
            ("dlq_attempts", str(attempts).encode()),
            ("dlq_failed_at", datetime.now(UTC).isoformat().encode()),
        ]
        await self.producer.send_and_wait(
            self.dead_letter_topic, value=rec.value, key=rec.key, headers=headers
        )
        self.metrics.events_dead_lettered.labels(rec.topic, reason).inc()
        log.error(
            "message dead-lettered",
            extra={
                "reason": reason,
                "error": str(error)[:500],
                "topic": rec.topic,
                "partition": rec.partition,
                "offset": rec.offset,
            },
        )


async def redrive_dead_letters(
    runner: ConsumerRunner, *, idle_timeout_s: float = 3.0, limit: int | None = None
) -> dict[str, int]:
    """Put this service's dead letters back through its handlers.

    Reads the dead-letter topic with its own consumer group (so each letter is redriven once), rebuilds
    each original record and processes it as the consumer would; one that fails again is dead-lettered
    anew. Stops when the topic is drained (no record for ``idle_timeout_s``) or after ``limit`` records.
    """
    outcomes: dict[str, int] = {}
    consumer = create_consumer(
        runner.settings, runner.group + ".redrive", [runner.dead_letter_topic]
    )
    await consumer.start()
    seen = 0
    # A letter that fails again is dead-lettered anew onto this same topic: stop at letters written after
    # the redrive began (left uncommitted for the next redrive), or a poison message would loop forever.
    started_ms = int(time.time() * 1000)
    drained = False
    try:
        while not drained and (limit is None or seen < limit):
            batches = await consumer.getmany(timeout_ms=int(idle_timeout_s * 1000), max_records=100)
            if not batches:
                break
            for tp, records in batches.items():
                last = None
                for rec in records:
                    if limit is not None and seen >= limit:
                        break
                    if rec.timestamp >= started_ms:
                        drained = True
                        break
                    hs = dict(rec.headers or ())
                    original = Record(
                        topic=hs.get("dlq_original_topic", b"?").decode(),
                        partition=int(hs.get("dlq_original_partition", b"-1")),
                        offset=int(hs.get("dlq_original_offset", b"-1")),
                        key=rec.key,
                        value=rec.value,
                        headers=[
                            (k, v) for k, v in rec.headers or () if not k.startswith(DLQ_PREFIX)
                        ],
                    )
                    outcome = await runner.process(original)
                    outcomes[outcome] = outcomes.get(outcome, 0) + 1
                    seen += 1
                    last = rec.offset
                if last is not None:
                    await consumer.commit({tp: last + 1})
    finally:
        await consumer.stop()
    return outcomes
