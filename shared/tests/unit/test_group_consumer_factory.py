"""The runner's consumer follows ``kafka_consumer_protocol``: aiokafka on the classic protocol (the
default), the KIP-848 adapter on the consumer protocol, with the same safe settings."""

from __future__ import annotations

import logging

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaConnectionError

from recall_shared.failures import is_transient
from recall_shared.kafka import create_group_consumer
from recall_shared.kafka_cooperative import CooperativeConsumer, LibrdkafkaLog
from recall_shared.quiet_logs import RepeatFilter


async def test_the_classic_protocol_is_the_default_and_stays_on_aiokafka(settings_factory) -> None:
    settings = settings_factory()
    assert settings.kafka_consumer_protocol == "classic"
    consumer = create_group_consumer(settings, "g", [], max_poll_records=10)
    assert isinstance(consumer, AIOKafkaConsumer)


def test_the_consumer_protocol_gets_the_adapter_with_safe_settings(settings_factory) -> None:
    settings = settings_factory(kafka_consumer_protocol="consumer")
    consumer = create_group_consumer(settings, "g", [], max_poll_records=10)
    assert isinstance(consumer, CooperativeConsumer)
    assert consumer.config["group.protocol"] == "consumer"
    assert consumer.config["group.remote.assignor"] == "range"
    assert consumer.config["enable.auto.commit"] is False
    assert consumer.config["enable.auto.offset.store"] is False
    assert consumer.config["isolation.level"] == "read_committed"


def test_the_unprefixed_variable_chooses_the_protocol(settings_factory, monkeypatch) -> None:
    monkeypatch.setenv("KAFKA_CONSUMER_PROTOCOL", "consumer")
    assert settings_factory().kafka_consumer_protocol == "consumer"


@pytest.mark.parametrize(
    "name", ["session.timeout.ms", "heartbeat.interval.ms", "partition.assignment.strategy"]
)
def test_settings_the_consumer_protocol_refuses_are_refused_up_front(name: str) -> None:
    with pytest.raises(ValueError, match=name):
        CooperativeConsumer(["t"], {"group.id": "g", name: "1"})


async def test_start_fails_while_no_broker_answers_so_the_runner_retries() -> None:
    consumer = CooperativeConsumer(
        ["t"], {"bootstrap.servers": "127.0.0.1:1", "group.id": "g"}, connect_timeout_s=0.5
    )
    with pytest.raises(KafkaConnectionError, match="no broker answers"):
        await consumer.start()
    assert is_transient(KafkaConnectionError("x"))
    await consumer.stop()  # nothing left to stop: no thread, no error


def test_librdkafka_lines_are_one_kind_per_facility_for_the_repeat_filter(caplog) -> None:
    caplog.set_level(logging.INFO, logger="recall_shared.librdkafka")
    sink = LibrdkafkaLog()
    sink.log(logging.ERROR, "%s [%s] %s", "FAIL", "c#consumer-1", "Connect to 127.0.0.1:1 failed")
    sink.log(logging.ERROR, "%s [%s] %s", "FAIL", "c#consumer-1", "Connect to 127.0.0.1:2 failed")
    first, second = caplog.records
    assert first.msg == second.msg == "librdkafka FAIL"
    assert first.__dict__["detail"] == "Connect to 127.0.0.1:1 failed"
    quiet = RepeatFilter()
    assert quiet.filter(first) and not quiet.filter(second)
