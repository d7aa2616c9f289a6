from __future__ import annotations

import pytest

from recall_shared import events as ev
from recall_shared.topics import (
    CATALOG,
    SERVICES,
    TOPICS_BY_NAME,
    all_topics,
    dead_letter_topic,
    topic_of,
)


@pytest.mark.parametrize("event_type", ev.ALL_EVENTS, ids=lambda c: c.event_type)
def test_every_event_is_in_exactly_one_catalog_topic(event_type: type[ev.Event]) -> None:
    holders = [t for t in CATALOG if event_type in t.event_types]
    assert len(holders) == 1, f"{event_type.event_type} is in {[t.name for t in holders]}"
    assert topic_of(event_type) is holders[0]
    assert holders[0].name == event_type.topic


def test_catalog_lists_no_event_outside_all_events() -> None:
    listed = [e for t in CATALOG for e in t.event_types]
    assert sorted(e.event_type for e in listed) == sorted(e.event_type for e in ev.ALL_EVENTS)
    assert len(ev.EVENTS_BY_TYPE) == len(ev.ALL_EVENTS)  # type strings are unique


def test_topic_names_are_unique_and_versioned() -> None:
    names = [t.name for t in all_topics()]
    assert len(names) == len(set(names))
    assert all(n.endswith(".v1") for n in names)
    assert TOPICS_BY_NAME.keys() == {t.name for t in CATALOG}


def test_dead_letter_topic_per_service() -> None:
    dlq = dead_letter_topic("recall-intake")
    assert dlq.name == "deadletter.recall-intake.v1"
    assert dlq.partitions == 1 and dlq.event_types == ()
    assert {t.name for t in all_topics()} >= {f"deadletter.{s}.v1" for s in SERVICES}


def test_physical_name_and_config() -> None:
    recalls = TOPICS_BY_NAME["recalls.v1"]
    assert recalls.physical("t1.") == "t1.recalls.v1"
    assert recalls.config() == {"min.insync.replicas": "1", "retention.ms": "-1"}
    customers = TOPICS_BY_NAME["customers.v1"]
    assert customers.config()["cleanup.policy"] == "compact"
    assert "retention.ms" not in customers.config()
    # On a cluster the settings ask for more in-sync replicas (recall_shared.settings).
    assert recalls.config(min_insync_replicas=2)["min.insync.replicas"] == "2"
