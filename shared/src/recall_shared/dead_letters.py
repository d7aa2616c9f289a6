"""Dead letters: written with their origin and error, counted while they wait, redriven by their
runner.

Each service has one dead-letter topic; every letter names the consumer group and the original
topic, partition and offset it came from. Reasons (``dlq_reason``):

- ``undecodable``: not a CloudEvent we can read (headers missing or malformed, body not JSON);
- ``invalid``: a known event type whose body fails its schema (including text or numbers storage
  cannot hold);
- ``rejected``: a handler's declared domain rejection
  (:class:`~recall_shared.handlers.PermanentError`);
- ``failed``: the handler kept raising while the database was healthy (a bug, or data the code did
  not foresee), after its bounded retries.

Infrastructure failures never make a letter: they are waited out (:mod:`recall_shared.batch`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from recall_shared.metrics import Metrics

log = logging.getLogger(__name__)

DLQ_PREFIX = "dlq_"
REASONS = ("undecodable", "invalid", "rejected", "failed")


class KafkaRecord(Protocol):
    """What is read of a consumed record: aiokafka's ConsumerRecord (aiokafka has no type hints)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Sequence[tuple[str, bytes]] | None: ...


@dataclass
class Record:
    """The parts of a Kafka record the runner needs (also rebuilt from a dead letter on redrive)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]] = field(default_factory=list)
    prior_attempts: int = 0  # attempts already spent on it before a redrive

    @classmethod
    def of(cls, rec: KafkaRecord) -> Record:
        return cls(
            rec.topic, rec.partition, rec.offset, rec.key, rec.value, list(rec.headers or ())
        )

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k == name:
                return v.decode("utf-8", "replace")
        return None


@dataclass(frozen=True)
class Letter:
    """A record read back from the dead-letter topic."""

    group: str
    original: Record
    reason: str

    @classmethod
    def of(cls, rec: KafkaRecord) -> Letter:
        hs = dict(rec.headers or ())

        def text(name: str, default: str) -> str:
            return hs.get(name, default.encode()).decode("utf-8", "replace")

        def number(name: str, default: int) -> int:
            try:
                return int(text(name, str(default)))
            except ValueError:
                return default

        original = Record(
            topic=text("dlq_original_topic", "?"),
            partition=number("dlq_original_partition", -1),
            offset=number("dlq_original_offset", -1),
            key=rec.key,
            value=rec.value,
            headers=[(k, v) for k, v in rec.headers or () if not k.startswith(DLQ_PREFIX)],
            prior_attempts=number("dlq_attempts", 1),
        )
        return cls(text("dlq_consumer_group", "?"), original, text("dlq_reason", "?"))


class DeadLetters:
    """Writes one consumer group's dead letters to its service's dead-letter topic."""

    def __init__(
        self, producer: AIOKafkaProducer, topic: str, group: str, metrics: Metrics
    ) -> None:
        self.producer = producer
        self.topic = topic
        self.group = group
        self.metrics = metrics

    async def publish(
        self, rec: Record, reason: str, error: BaseException, attempts: int = 1
    ) -> None:
        """Park the record, awaited to the broker's acknowledgement before the offset moves on."""
        total_attempts = rec.prior_attempts + attempts
        headers = [(k, v) for k, v in rec.headers if not k.startswith(DLQ_PREFIX)]
        headers += [
            ("dlq_reason", reason.encode()),
            ("dlq_error", f"{type(error).__name__}: {error}"[:4000].encode()),
            ("dlq_original_topic", rec.topic.encode()),
            ("dlq_original_partition", str(rec.partition).encode()),
            ("dlq_original_offset", str(rec.offset).encode()),
            ("dlq_consumer_group", self.group.encode()),
            ("dlq_attempts", str(total_attempts).encode()),
            ("dlq_failed_at", datetime.now(UTC).isoformat().encode()),
        ]
        await self.producer.send_and_wait(self.topic, value=rec.value, key=rec.key, headers=headers)
        self.metrics.events_dead_lettered.labels(rec.topic, reason).inc()
        log.error(
            "message dead-lettered (%s): %s",
            reason,
            f"{type(error).__name__}: {error}"[:300],
            extra={
                "reason": reason,
                "outcome": "dead_lettered",  # as the runner's "event handled" lines say
                "event_id": rec.header("ce_id"),
                "correlation_id": rec.header("ce_correlationid"),
                "event_type": rec.header("ce_type"),
                "topic": rec.topic,
                "partition": rec.partition,
                "offset": rec.offset,
                "attempts": total_attempts,
                "dead_letter_topic": self.topic,
                "redrive": "python -m <service> redrive-dead-letters",
            },
        )


Process = Callable[[Sequence[Record]], Awaitable[dict[str, int]]]


async def _end_offsets(consumer: AIOKafkaConsumer, topic: str) -> dict[TopicPartition, int]:
    partitions = consumer.partitions_for_topic(topic)
    for _ in range(50):
        if partitions:
            break
        await consumer._client.force_metadata_update()  # a fresh client may not know the topic yet
        partitions = consumer.partitions_for_topic(topic)
        await asyncio.sleep(0.1)
    tps = [TopicPartition(topic, p) for p in sorted(partitions or ())]
    return await consumer.end_offsets(tps) if tps else {}


async def redrive(
    consumer: AIOKafkaConsumer,
    topic: str,
    *,
    group: str,
    original_topics: Sequence[str],
    process: Process,
    limit: int | None = None,
) -> dict[str, int]:
    """Put one runner's letters back through its handlers; returns true counts by outcome.

    ``consumer`` is a started group consumer (the runner's redrive group) not yet subscribed. Only
    letters of ``group`` from ``original_topics`` are processed; others are skipped (counted as
    ``other_runner``) and left to their own runner's redrive. It stops at the end offsets taken
    before it began, so a letter that fails again (written back once, its attempts raised) waits for
    the next redrive instead of looping.
    """
    ends = await _end_offsets(consumer, topic)
    outcomes: dict[str, int] = {}
    wanted = set(original_topics)
    consumer.assign(list(ends))
    todo = {tp for tp, end in ends.items() if end > 0}
    for tp in list(todo):
        committed = await consumer.committed(tp)
        if committed is not None and committed >= ends[tp]:
            todo.discard(tp)
    seen = 0
    while todo and (limit is None or seen < limit):
        batches = await consumer.getmany(*todo, timeout_ms=1000, max_records=100)
        for tp, records in batches.items():
            mine: list[Record] = []
            last: int | None = None
            for rec in records:
                if rec.offset >= ends[tp] or (limit is not None and seen >= limit):
                    break
                letter = Letter.of(rec)
                last = rec.offset
                if letter.group == group and letter.original.topic in wanted:
                    mine.append(letter.original)
                    seen += 1
                else:
                    outcomes["other_runner"] = outcomes.get("other_runner", 0) + 1
            for outcome, n in (await process(mine)).items() if mine else ():
                outcomes[outcome] = outcomes.get(outcome, 0) + n
            if last is not None:
                await consumer.commit({tp: last + 1})
                if last + 1 >= ends[tp]:
                    todo.discard(tp)
    return outcomes


class PendingLetters:
    """Counts one group's letters not yet redriven, per original topic, for the
    ``dead_letters_pending`` gauge and the readiness details: reads the dead-letter topic's new
    records since the last look (each record once) and drops those below the redrive group's
    committed offset."""

    def __init__(
        self, topic: str, group: str, redrive_group_offsets: Callable[[], Awaitable[dict[int, int]]]
    ) -> None:
        self.topic = topic
        self.group = group
        self.redrive_group_offsets = redrive_group_offsets
        self._positions: dict[int, int] = {}
        self._letters: dict[
            int, list[tuple[int, str]]
        ] = {}  # partition -> (offset, original topic)

    async def scan(self, consumer: AIOKafkaConsumer) -> dict[str, int]:
        """Update from ``consumer`` (a started consumer without a group); returns pending per
        topic."""
        ends = await _end_offsets(consumer, self.topic)
        consumer.assign(list(ends))
        for tp, end in ends.items():
            pos = self._positions.get(tp.partition, 0)
            if pos >= end:
                continue
            consumer.seek(tp, pos)
            while pos < end:
                batch = await consumer.getmany(tp, timeout_ms=1000, max_records=500)
                records = batch.get(tp, [])
                if not records:
                    break
                for rec in records:
                    letter = Letter.of(rec)
                    if letter.group == self.group:
                        self._letters.setdefault(tp.partition, []).append(
                            (rec.offset, letter.original.topic)
                        )
                    pos = rec.offset + 1
            self._positions[tp.partition] = pos
        committed = await self.redrive_group_offsets()
        counts: dict[str, int] = {}
        for partition, letters in self._letters.items():
            floor = committed.get(partition, 0)
            kept = [(o, t) for o, t in letters if o >= floor]
            self._letters[partition] = kept
            for _, original_topic in kept:
                counts[original_topic] = counts.get(original_topic, 0) + 1
        return counts


async def stop_quietly(consumer: AIOKafkaConsumer) -> None:
    with contextlib.suppress(Exception):
        await consumer.stop()
