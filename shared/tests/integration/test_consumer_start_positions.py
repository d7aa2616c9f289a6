"""The consumer runner logs, once per assignment, where each assigned partition starts and the
group's committed offsets: a restarted instance's line names the offsets the previous one
committed (the earliest, 0, where nothing was committed), so what it applies again can be counted
against what was applied before (the crash test's "duplicates <= uncommitted"). Real Kafka and
PostgreSQL."""

from __future__ import annotations

import logging

import pytest

from recall_shared import events as ev
from recall_shared.sample_events import alert_closed
from recall_shared.testing import eventually
from recall_shared.topics import ALERTS

pytestmark = pytest.mark.integration


async def test_a_restarted_runner_logs_each_partitions_committed_starting_offset(
    infra, run_task, group_offsets, topic_end_offsets, caplog
) -> None:
    await infra.create_topics(ALERTS)
    topic = infra.topic(ALERTS)
    producer = await infra.producer()
    for i in range(12):  # a few partitions get records, the others none
        await infra.send(producer, ALERTS, alert_closed(f"al-{i}", f"cust-{i % 3}"))
    handlers = {ev.AlertClosed: infra.inserting_handler}
    first = infra.runner(handlers, [ALERTS], producer=producer)
    ends = await topic_end_offsets(topic)
    async with run_task(first):

        async def committed_to_end() -> bool:
            got = await group_offsets(first.group)
            return all(got.get((topic, p), 0) == end for p, end in ends.items())

        await eventually(committed_to_end, timeout=25)
    for i in range(12, 15):  # more after the first stopped: the next one starts before them
        await infra.send(producer, ALERTS, alert_closed(f"al-{i}", f"cust-{i % 3}"))

    caplog.set_level(logging.INFO, logger="recall_shared.consumer")
    caplog.clear()
    second = infra.runner(handlers, [ALERTS], producer=producer)

    async def starting_positions() -> logging.LogRecord | None:
        return next((r for r in caplog.records if r.getMessage() == "starting positions"), None)

    async with run_task(second):
        line = await eventually(starting_positions, timeout=25)
    assert line.levelno == logging.INFO and line.__dict__["group"] == first.group
    assert line.__dict__["positions"] == {f"{topic}[{p}]": end for p, end in ends.items()}
    assert line.__dict__["committed"] == {
        f"{topic}[{p}]": (end or None) for p, end in ends.items()
    }, "no commit (null) where the first runner had nothing to apply"
    assert line.__dict__["complete"] is True
    lines = [r for r in caplog.records if r.getMessage() == "starting positions"]
    assert len(lines) == 1, "one line per assignment"
