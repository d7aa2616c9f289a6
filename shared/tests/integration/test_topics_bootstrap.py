"""Topic creation from the catalog against the real broker."""

from __future__ import annotations

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from recall_shared.kafka import create_topics
from recall_shared.testing import kafka_bootstrap
from recall_shared.topics import CUSTOMERS, ORDERS, RECALLS, TopicSpec, dead_letter_topic

pytestmark = pytest.mark.integration


async def _describe(admin: AIOKafkaAdminClient, name: str) -> tuple[int, dict[str, str]]:
    (meta,) = await admin.describe_topics([name])
    assert meta["error_code"] == 0, meta
    (resp,) = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)])
    (resource,) = resp.to_object()["resources"]
    configs = {e["config_names"]: e["config_value"] for e in resource["config_entries"]}
    return len(meta["partitions"]), configs


async def test_create_topics_applies_the_catalog_and_is_idempotent(infra) -> None:
    specs = [RECALLS, ORDERS, CUSTOMERS, dead_letter_topic("notifier")]
    created = await create_topics(kafka_bootstrap(), infra.prefix, specs)
    assert sorted(created) == sorted(s.physical(infra.prefix) for s in specs)
    # A second run (another replica, a redeploy) creates nothing and does not fail.
    assert await create_topics(kafka_bootstrap(), infra.prefix, specs) == []
    # Only the missing one of a larger set is created.
    assert await create_topics(
        kafka_bootstrap(), infra.prefix, [RECALLS, dead_letter_topic("recall-intake")]
    ) == [dead_letter_topic("recall-intake").physical(infra.prefix)]

    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap())
    await admin.start()
    try:
        for spec in specs:
            partitions, configs = await _describe(admin, spec.physical(infra.prefix))
            assert partitions == spec.partitions, spec.name
            for key, value in spec.config().items():
                assert configs[key] == value, (spec.name, key)
        _, recall_cfg = await _describe(admin, RECALLS.physical(infra.prefix))
        assert recall_cfg["retention.ms"] == "-1" and recall_cfg["cleanup.policy"] == "delete"
        _, customer_cfg = await _describe(admin, CUSTOMERS.physical(infra.prefix))
        assert customer_cfg["cleanup.policy"] == "compact"
        _, order_cfg = await _describe(admin, ORDERS.physical(infra.prefix))
        assert order_cfg["retention.ms"] == str(30 * 24 * 3600 * 1000)
    finally:
        await admin.close()


async def test_create_topics_reports_broker_refusals(infra) -> None:
    bad = TopicSpec("bad.v1", "k", 0, "tests", "zero partitions is refused by the broker", ())
    with pytest.raises(RuntimeError, match=r"bad\.v1"):
        await create_topics(kafka_bootstrap(), infra.prefix, [bad])
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap())
    await admin.start()
    try:
        assert bad.physical(infra.prefix) not in await admin.list_topics()
    finally:
        await admin.close()
