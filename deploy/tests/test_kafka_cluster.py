"""Three KRaft brokers on loopback (deploy/kafka/cluster.sh): create-topics makes every
catalog topic with the replication of the settings (factor 3, min.insync.replicas=2), and an
idempotent acks=all producer keeps writing, losing nothing, while one broker is killed.

About 40 s here (three JVMs starting on two cores)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from recall_shared.kafka import create_client_producer
from recall_shared.testing import read_to_end
from recall_shared.topics import ALERTS, all_topics

pytestmark = pytest.mark.integration

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kafka_cluster import Cluster  # noqa: E402


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("kafka-cluster"))
    c("start")
    try:
        yield c
    finally:
        c("stop")


def test_topics_are_replicated_three_times_and_writes_survive_a_lost_broker(
    cluster: Cluster,
) -> None:
    bootstrap, prefix = cluster("bootstrap"), f"rf3-{uuid.uuid4().hex[:8]}."
    created = subprocess.run(
        [sys.executable, "-m", "recall_intake", "create-topics"],
        env={
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "RECALL_ALERTS_TOPIC_PREFIX": prefix,
            "RECALL_ALERTS_TOPIC_REPLICATION_FACTOR": "3",
            "RECALL_ALERTS_TOPIC_MIN_INSYNC_REPLICAS": "2",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert created.returncode == 0, created.stderr
    names = [spec.physical(prefix) for spec in all_topics()]
    replicas, min_isr = asyncio.run(_replication(bootstrap, names))
    assert replicas == {name: {3} for name in names}
    assert min_isr == {name: "2" for name in names}

    topic = ALERTS.physical(prefix)
    asyncio.run(_produce(bootstrap, topic, range(0, 100)))
    cluster("kill", "2")
    asyncio.run(_produce(bootstrap, topic, range(100, 200)))
    records = asyncio.run(read_to_end(topic, bootstrap=bootstrap, timeout=30))
    assert sorted(int(r.value) for r in records) == list(range(200))  # none lost, none twice


async def _replication(
    bootstrap: str, names: list[str]
) -> tuple[dict[str, set[int]], dict[str, str]]:
    """Per topic: the replica counts of its partitions, and its min.insync.replicas."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(names)
        replicas = {t["topic"]: {len(p["replicas"]) for p in t["partitions"]} for t in described}
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name) for name in names]
        )
        min_isr = {}
        for response in responses:
            for resource in response.to_object()["resources"]:
                entries = {e["config_names"]: e["config_value"] for e in resource["config_entries"]}
                min_isr[resource["resource_name"]] = entries["min.insync.replicas"]
        return replicas, min_isr
    finally:
        await admin.close()


async def _produce(bootstrap: str, topic: str, numbers: range) -> None:
    producer = create_client_producer(bootstrap, "rf3-test")
    await producer.start()
    try:
        for n in numbers:
            await producer.send_and_wait(topic, str(n).encode(), key=f"k{n % 7}".encode())
    finally:
        await producer.stop()
