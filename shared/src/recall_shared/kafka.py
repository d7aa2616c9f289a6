"""Kafka client factories with safe settings, and topic creation from the catalog.

aiokafka's defaults (acks=1, no idempotence, auto-committing consumers) lose or duplicate messages
on failure; every client in the system is built here so nobody gets those defaults by accident.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections import deque
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import TopicAlreadyExistsError, for_code

from recall_shared.settings import ServiceSettings
from recall_shared.topics import TopicSpec, all_topics

log = logging.getLogger(__name__)

_UNSAFE_PRODUCER = {"acks", "enable_idempotence"}
_UNSAFE_CONSUMER = {"enable_auto_commit"}


def create_producer(settings: ServiceSettings, **overrides: object) -> AIOKafkaProducer:
    """An idempotent producer with acks=all: no loss, no duplicates from its own retries, order
    kept."""
    return create_client_producer(
        settings.kafka_bootstrap_servers, f"{settings.service_name}-producer", **overrides
    )


def create_client_producer(
    bootstrap_servers: str, client_id: str, **overrides: object
) -> AIOKafkaProducer:
    """The same safe producer for a client that is not a service (demo loader, upstream stand-ins,
    tools)."""
    bad = _UNSAFE_PRODUCER & overrides.keys()
    if bad:
        raise ValueError(f"refusing to override safe producer settings: {sorted(bad)}")
    options: dict[str, object] = {
        "bootstrap_servers": bootstrap_servers,
        "client_id": client_id,
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 5,
        "max_batch_size": 256 * 1024,
        "request_timeout_ms": 30_000,
    }
    options.update(overrides)
    return AIOKafkaProducer(**options)


_M = 0x5BD1E995


def murmur2(key: bytes) -> int:
    """Kafka's key hash (the Java client's ``Utils.murmur2``, which every client's default
    partitioner uses), equal to ``aiokafka.partitioner.murmur2`` and about three times faster: words
    are unpacked at once."""
    length = len(key)
    h = 0x9747B28C ^ length
    words = length // 4
    for k in struct.unpack_from(f"<{words}I", key):
        k = (k * _M) & 0xFFFFFFFF
        k ^= k >> 24
        h = ((h * _M) & 0xFFFFFFFF) ^ ((k * _M) & 0xFFFFFFFF)
    tail = length & 3
    if tail:
        i = words * 4
        if tail == 3:
            h ^= key[i + 2] << 16
        if tail >= 2:
            h ^= key[i + 1] << 8
        h = ((h ^ key[i]) * _M) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * _M) & 0xFFFFFFFF
    return h ^ (h >> 15)


class KeyedBatchSender:
    """Streams many keyed records to one topic through aiokafka's batch API (``create_batch`` /
    ``send_batch``), a fraction of the per-record cost of ``send()``.

    Each key goes to the partition ``send()`` would choose (murmur2 of the key, as every Kafka
    client does), so records sent here and records relayed from an outbox keep their per-key order.
    At most ``max_inflight`` batches wait for acknowledgement at once, so memory stays bounded
    however many records stream through. ``flush()`` returns once the broker has acknowledged every
    record and raises if any batch failed.
    """

    def __init__(self, producer: AIOKafkaProducer, topic: str, *, max_inflight: int = 32) -> None:
        self.producer = producer
        self.topic = topic
        self.max_inflight = max_inflight
        self.sent = 0
        self._partitions: list[int] = []
        self._batches: dict[int, object] = {}
        self._inflight: deque[asyncio.Future] = deque()

    async def start(self) -> KeyedBatchSender:
        self._partitions = sorted(await self.producer.partitions_for(self.topic))
        return self

    def partition_for(self, key: bytes) -> int:
        return self._partitions[(murmur2(key) & 0x7FFFFFFF) % len(self._partitions)]

    async def add(self, key: bytes, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        partition = self.partition_for(key)
        batch = self._batches.get(partition)
        if batch is None:
            batch = self._batches[partition] = self.producer.create_batch()
        if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:  # type: ignore[attr-defined]
            await self._send(partition, batch)
            batch = self._batches[partition] = self.producer.create_batch()
            # An empty batch takes any record, even one over max_batch_size (the broker's limit
            # still applies).
            if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
                raise ValueError(f"record for key {key!r} does not fit an empty batch")
        self.sent += 1

    async def _send(self, partition: int, batch: object) -> None:
        self._inflight.append(
            await self.producer.send_batch(batch, self.topic, partition=partition)
        )
        while len(self._inflight) > self.max_inflight:
            await self._inflight.popleft()

    async def flush(self) -> int:
        """Send what is buffered and wait for every acknowledgement; returns how many records were
        sent. Raises the first failure, after every batch in flight has settled."""
        for partition, batch in list(self._batches.items()):
            if batch.record_count():  # type: ignore[attr-defined]
                await self._send(partition, batch)
        self._batches.clear()
        inflight, self._inflight = list(self._inflight), deque()
        for outcome in await asyncio.gather(*inflight, return_exceptions=True):
            if isinstance(outcome, BaseException):
                raise outcome
        return self.sent

    async def abandon(self) -> None:
        """Give up: drop what is not sent yet; batches already handed to the producer finish on
        their own (their outcome is collected, not raised)."""
        self._batches.clear()
        inflight, self._inflight = list(self._inflight), deque()
        await asyncio.gather(*inflight, return_exceptions=True)


def create_consumer(
    settings: ServiceSettings, group_id: str | None, topics: Iterable[str], **overrides: object
) -> AIOKafkaConsumer:
    """A group consumer that never auto-commits: offsets are committed by the runner after the
    effect."""
    bad = _UNSAFE_CONSUMER & overrides.keys()
    if bad:
        raise ValueError(f"refusing to override safe consumer settings: {sorted(bad)}")
    options: dict[str, object] = {
        "bootstrap_servers": settings.kafka_bootstrap_servers,
        "client_id": f"{settings.service_name}-consumer",
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "isolation_level": "read_committed",
        "max_poll_records": 500,
        # Range keeps the same partition numbers of co-partitioned topics on one member, so a key's
        # events from several topics reach the same instance (see consumer.py's slots).
        "partition_assignment_strategy": (RangePartitionAssignor,),
    }
    options.update(overrides)
    return AIOKafkaConsumer(*topics, **options)


async def create_topics(
    bootstrap_servers: str,
    prefix: str = "",
    specs: Iterable[TopicSpec] | None = None,
    *,
    replication_factor: int = 1,
    min_insync_replicas: int = 1,
) -> list[str]:
    """Create missing topics from the catalog; returns the names created. Existing topics are left
    as they are (their replication too: reassigning partitions is the cluster operator's tool)."""
    specs = list(specs if specs is not None else all_topics())
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers, client_id="recall-alerts-topic-bootstrap"
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [s for s in specs if s.physical(prefix) not in existing]
        if not wanted:
            return []
        new = [
            NewTopic(
                name=s.physical(prefix),
                num_partitions=s.partitions,
                replication_factor=replication_factor,
                topic_configs=s.config(min_insync_replicas),
            )
            for s in wanted
        ]
        try:
            response = await admin.create_topics(new)
        except TopicAlreadyExistsError:
            return []  # another bootstrap won the race; the topics are there either way
        # The admin client does not raise on per-topic errors: they come back in the response.
        created, failed = [], []
        for topic, code, *message in response.topic_errors:
            if code == 0:
                created.append(topic)
            elif (
                code != TopicAlreadyExistsError.errno
            ):  # lost a race: the topic is there either way
                failed.append(
                    f"{topic}: {for_code(code).__name__} {message[0] if message else ''}".strip()
                )
        if failed:
            raise RuntimeError(f"could not create topics: {'; '.join(failed)}")
        log.info("created topics", extra={"topics": created})
        return created
    finally:
        await admin.close()
