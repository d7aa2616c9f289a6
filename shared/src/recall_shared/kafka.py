"""Kafka client factories with safe settings, and topic creation from the catalog.

aiokafka's defaults (acks=1, no idempotence, auto-committing consumers) lose or duplicate messages on
failure; every client in the system is built here so nobody gets those defaults by accident.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, for_code

from recall_shared.settings import ServiceSettings
from recall_shared.topics import TopicSpec, all_topics

log = logging.getLogger(__name__)

_UNSAFE_PRODUCER = {"acks", "enable_idempotence"}
_UNSAFE_CONSUMER = {"enable_auto_commit"}


def create_producer(settings: ServiceSettings, **overrides: object) -> AIOKafkaProducer:
    """An idempotent producer with acks=all: no loss, no duplicates from its own retries, order kept."""
    return create_client_producer(settings.kafka_bootstrap_servers, f"{settings.service_name}-producer", **overrides)


def create_client_producer(bootstrap_servers: str, client_id: str, **overrides: object) -> AIOKafkaProducer:
    """The same safe producer for a client that is not a service (demo loader, upstream stand-ins, tools)."""
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


def create_consumer(
    settings: ServiceSettings, group_id: str, topics: Iterable[str], **overrides: object
) -> AIOKafkaConsumer:
    """A group consumer that never auto-commits: offsets are committed by the runner after the effect."""
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
    }
    options.update(overrides)
    return AIOKafkaConsumer(*topics, **options)


async def create_topics(
    bootstrap_servers: str, prefix: str = "", specs: Iterable[TopicSpec] | None = None
) -> list[str]:
    """Create missing topics from the catalog; returns the names created. Existing topics are left as they are."""
    specs = list(specs if specs is not None else all_topics())
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id="recall-alerts-topic-bootstrap")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [s for s in specs if s.physical(prefix) not in existing]
        if not wanted:
            return []
        new = [
            NewTopic(name=s.physical(prefix), num_partitions=s.partitions, replication_factor=1, topic_configs=s.config())
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
            elif code != TopicAlreadyExistsError.errno:  # lost a race: the topic is there either way
                failed.append(f"{topic}: {for_code(code).__name__} {message[0] if message else ''}".strip())
        if failed:
            raise RuntimeError(f"could not create topics: {'; '.join(failed)}")
        log.info("created topics", extra={"topics": created})
        return created
    finally:
        await admin.close()
