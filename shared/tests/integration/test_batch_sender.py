"""KeyedBatchSender on a real broker: every record acknowledged, on the partition send() would
choose, in order per key, with a bounded number of batches in flight."""

from __future__ import annotations

import pytest

from recall_shared.kafka import KeyedBatchSender, create_client_producer, create_topics
from recall_shared.testing import delete_topics, kafka_bootstrap, read_to_end, unique_topic_prefix
from recall_shared.topics import ALERTS

pytestmark = pytest.mark.integration


async def test_records_land_where_send_would_put_them_in_key_order() -> None:
    prefix = unique_topic_prefix()
    await create_topics(kafka_bootstrap(), prefix, [ALERTS])
    topic = prefix + ALERTS.name
    producer = create_client_producer(
        kafka_bootstrap(), "test-batch-sender", max_batch_size=16 * 1024
    )
    await producer.start()
    try:
        sender = await KeyedBatchSender(producer, topic, max_inflight=2).start()
        sent = []
        for i in range(3000):
            key = f"customer-{i % 97}".encode()
            value = (
                f"{i:06d}".encode() + b"x" * 200
            )  # ~200 bytes: many 16 KiB batches, so max_inflight is exercised
            await sender.add(key, value, [("ce_id", str(i).encode())])
            sent.append((key, value))
            assert len(sender._inflight) <= 2
        assert await sender.flush() == 3000
        # send() for one more record per key, to learn the partition the client itself chooses
        expected_partition = {}
        for key in {k for k, _ in sent}:
            meta = await (await producer.send(topic, b"probe", key=key))
            expected_partition[key] = meta.partition
    finally:
        await producer.stop()
    records = [r for r in await read_to_end(topic) if r.value != b"probe"]
    assert len(records) == 3000
    assert all(r.partition == expected_partition[r.key] for r in records)
    by_key: dict[bytes, list[bytes]] = {}
    for r in records:
        by_key.setdefault(r.key, []).append(r.value)
    assert by_key == {k: [v for kk, v in sent if kk == k] for k in by_key}  # per-key order kept
    assert dict(records[0].headers)["ce_id"].isdigit()
    await delete_topics(prefix)


async def test_a_record_larger_than_a_batch_goes_alone() -> None:
    prefix = unique_topic_prefix()
    await create_topics(kafka_bootstrap(), prefix, [ALERTS])
    producer = create_client_producer(kafka_bootstrap(), "test-batch-sender", max_batch_size=1024)
    await producer.start()
    try:
        sender = await KeyedBatchSender(producer, prefix + ALERTS.name).start()
        await sender.add(b"k", b"small", [])
        await sender.add(b"k", b"x" * 4096, [])
        await sender.add(b"k", b"after", [])
        assert await sender.flush() == 3
        assert [r.value[:5] for r in await read_to_end(prefix + ALERTS.name)] == [
            b"small",
            b"xxxxx",
            b"after",
        ]
    finally:
        await producer.stop()
        await delete_topics(prefix)
