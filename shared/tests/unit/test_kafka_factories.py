"""The client factories enforce safe settings. Clients are constructed, never started (no broker
needed); AIOKafkaProducer wants a running loop at construction, hence async tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from recall_shared.kafka import create_consumer, create_producer


@pytest.mark.parametrize("override", [{"acks": 1}, {"acks": 0}, {"enable_idempotence": False}])
async def test_producer_refuses_unsafe_overrides(
    settings_factory: Callable, override: dict
) -> None:
    with pytest.raises(ValueError, match="refusing"):
        create_producer(settings_factory(), **override)


async def test_producer_is_idempotent_with_acks_all(settings_factory: Callable) -> None:
    producer = create_producer(
        settings_factory(kafka_bootstrap_servers="broker-a:9092"), linger_ms=50
    )
    try:
        # aiokafka keeps acks in the sender (-1 is "all") and builds a transaction manager (producer
        # id, sequence numbers) only for an idempotent producer.
        assert producer._sender._acks == -1
        assert producer._txn_manager is not None
        assert producer.client._bootstrap_servers == "broker-a:9092"
        assert producer.client._client_id == "recall-intake-producer"
        assert producer._message_accumulator._linger_time == 0.05  # a harmless override applies
    finally:
        await producer.stop()


async def test_plain_aiokafka_defaults_are_what_the_factory_guards_against() -> None:
    from aiokafka import AIOKafkaProducer

    plain = AIOKafkaProducer(bootstrap_servers="broker-a:9092")
    try:
        assert plain._sender._acks == 1 and plain._txn_manager is None
    finally:
        await plain.stop()


def test_consumer_refuses_auto_commit(settings_factory: Callable) -> None:
    with pytest.raises(ValueError, match="enable_auto_commit"):
        create_consumer(settings_factory(), "g", ["t"], enable_auto_commit=True)


async def test_consumer_never_auto_commits(settings_factory: Callable) -> None:
    consumer = create_consumer(settings_factory(), "group-x", ["a", "b"], max_poll_records=7)
    try:
        assert consumer._enable_auto_commit is False
        assert consumer._group_id == "group-x"
        assert consumer._isolation_level == "read_committed"
        assert consumer._max_poll_records == 7
        assert consumer._auto_offset_reset == "earliest"
        assert set(consumer._client._topics) == {"a", "b"}
    finally:
        await consumer.stop()


# --------------------------------------------------------------------------- key hashing


def test_murmur2_is_kafkas_key_hash() -> None:
    import os
    import random

    from aiokafka.partitioner import murmur2 as reference

    from recall_shared.kafka import murmur2

    rnd = random.Random(7)
    keys = [
        b"",
        b"a",
        b"ab",
        b"abc",
        b"abcd",
        "kund-ü".encode(),
        *(os.urandom(rnd.randrange(0, 80)) for _ in range(500)),
    ]
    for key in keys:
        assert murmur2(key) == reference(key), key
    # the Java client's values for two known keys (Utils.murmur2, masked as the default partitioner
    # does)
    assert murmur2(b"21") & 0x7FFFFFFF == (-973932308) & 0x7FFFFFFF
    assert murmur2(b"foobar") & 0x7FFFFFFF == (-790332482) & 0x7FFFFFFF
