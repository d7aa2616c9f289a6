"""The consumer runner against the real Kafka and PostgreSQL: inbox, offsets, retries, dead
letters."""

from __future__ import annotations

import asyncio
from collections import Counter

import orjson
import pytest
from sqlalchemy import text

from recall_shared import envelope
from recall_shared import events as ev
from recall_shared.consumer import PermanentError, redrive_dead_letters
from recall_shared.sample_events import alert_closed, alert_withdrawn
from recall_shared.testing import envelope_of, eventually, read_topic
from recall_shared.topics import ALERTS, dead_letter_topic

pytestmark = pytest.mark.integration

DLQ = dead_letter_topic("recall-intake")


@pytest.fixture
async def topics(infra) -> None:
    await infra.create_topics(ALERTS, DLQ)


def _outcomes(runner, metric_total) -> float:
    m = runner.metrics
    return sum(
        metric_total(m, n)
        for n in ("events_consumed", "events_duplicate", "events_ignored", "events_dead_lettered")
    )


async def test_each_event_applied_once_and_offsets_committed(
    infra, topics, run_task, metric_total, group_offsets, topic_end_offsets
) -> None:
    producer = await infra.producer()
    ids = [
        (await infra.send(producer, ALERTS, alert_closed(f"al-{i}", f"cust-{i % 4}")))[0]
        for i in range(20)
    ]
    seen_context: list[tuple[str | None, str | None]] = []

    async def handler(session, event, env) -> None:
        from recall_shared.logging import correlation_id_var, event_id_var

        assert isinstance(event, ev.AlertClosed) and env.subject == event.alert_id
        seen_context.append((correlation_id_var.get(), event_id_var.get()))
        await infra.inserting_handler(session, event, env)

    runner = infra.runner({ev.AlertClosed: handler}, [ALERTS], producer=producer)
    async with run_task(runner):
        await eventually(lambda: _count(infra, 20), timeout=25)
        # Offsets are committed after the effects: the group's committed offsets reach the end.
        ends = await topic_end_offsets(infra.topic(ALERTS))

        async def committed_to_end() -> bool:
            got = await group_offsets(runner.group)
            return all(
                got.get((infra.topic(ALERTS), p), 0) == end for p, end in ends.items() if end
            )

        await eventually(committed_to_end, timeout=10)
    assert sorted(await infra.applied_ids()) == sorted(ids)
    assert metric_total(runner.metrics, "events_consumed", event_type="alert.closed.v1") == 20
    assert runner.group == f"{infra.prefix}recall-intake"
    # The runner sets the log context from the envelope for each event.
    assert {cid for cid, _ in seen_context} == {"corr-test"}
    assert sorted(str(eid) for _, eid in seen_context) == sorted(ids)
    assert (
        await infra.scalar("SELECT count(*) FROM inbox WHERE consumer_group = :g", g=runner.group)
        == 20
    )


async def _count(infra, n: int) -> bool:
    return await infra.applied_count() >= n


class ProcessDied(BaseException):
    """Stands for a crash: not an Exception, so the runner's restart loop does not swallow it."""


async def test_crash_after_commit_before_offset_commit_applies_every_event_once(
    infra, topics, run_task, metric_total
) -> None:
    producer = await infra.producer()
    ids = [
        (await infra.send(producer, ALERTS, alert_closed(f"al-{i}", f"cust-{i % 3}")))[0]
        for i in range(20)
    ]

    async def die_after_the_first_commit(rec) -> None:
        raise ProcessDied  # after a batch's transaction committed, before its offset commit

    first = infra.runner(
        {ev.AlertClosed: infra.inserting_handler},
        [ALERTS],
        producer=producer,
        on_applied=die_after_the_first_commit,
    )
    with pytest.raises(ProcessDied):
        await asyncio.wait_for(first.run(), timeout=30)
    applied_before_crash = await infra.applied_count()
    assert (
        1 <= applied_before_crash <= 20
    )  # at least the crashed batch committed; its offset did not

    second = infra.runner({ev.AlertClosed: infra.inserting_handler}, [ALERTS], producer=producer)
    assert second.group == first.group

    async def caught_up() -> bool:
        m = second.metrics
        # Those never applied are applied now; the crashed batch is redelivered and deduplicated.
        return (
            metric_total(m, "events_consumed") >= 20 - applied_before_crash
            and metric_total(m, "events_duplicate") >= 1
        )

    async with run_task(second):
        await eventually(caught_up, timeout=25)
        await asyncio.sleep(0.5)  # let any further redelivery land before checking
    assert Counter(await infra.applied_ids()) == {i: 1 for i in ids}
    assert metric_total(second.metrics, "events_consumed") == 20 - applied_before_crash
    assert 1 <= metric_total(second.metrics, "events_duplicate") <= applied_before_crash


def _dlq_headers(raw) -> dict[str, str]:
    return {k: v.decode() for k, v in raw.headers if k.startswith("dlq_")}


async def test_undecodable_and_invalid_messages_are_dead_lettered_and_the_partition_moves_on(
    infra, topics, run_task, metric_total
) -> None:
    producer = await infra.producer()
    topic = infra.topic(ALERTS)
    key = b"cust-1"  # one key: all on one partition, behind each other
    garbage = await producer.send_and_wait(topic, value=b"\x00\x01 not an event", key=key)
    good_env = envelope.wrap(alert_closed("al-bad", "cust-1"), source="/tests")
    body = orjson.loads(good_env.data)
    body["closed_at"] = "not a timestamp"
    invalid = await producer.send_and_wait(
        topic, value=orjson.dumps(body), key=key, headers=good_env.headers()
    )
    valid_id, valid = await infra.send(producer, ALERTS, alert_closed("al-good", "cust-1"))
    assert garbage.partition == invalid.partition == valid.partition

    runner = infra.runner({ev.AlertClosed: infra.inserting_handler}, [ALERTS], producer=producer)
    async with run_task(runner):
        await eventually(lambda: _count(infra, 1), timeout=25)
    assert await infra.applied_ids() == [valid_id]

    letters = await read_topic(infra.topic(DLQ), count=2, timeout=15)
    assert len(letters) == 2
    (k1, env1, raw1), (_, env2, raw2) = letters
    h1, h2 = _dlq_headers(raw1), _dlq_headers(raw2)
    assert env1 is None and raw1.value == b"\x00\x01 not an event" and k1 == key
    assert (
        h1["dlq_reason"] == "undecodable"
        and "EnvelopeError" in h1["dlq_error"]
        and "ce_id" in h1["dlq_error"]
    )
    assert (h1["dlq_original_topic"], h1["dlq_original_partition"], h1["dlq_original_offset"]) == (
        topic,
        str(garbage.partition),
        str(garbage.offset),
    )
    assert env2 is not None and env2.id == good_env.id and raw2.value == orjson.dumps(body)
    assert (
        h2["dlq_reason"] == "invalid"
        and "InvalidEvent" in h2["dlq_error"]
        and "closed_at" in h2["dlq_error"]
    )
    assert (h2["dlq_original_topic"], h2["dlq_original_partition"], h2["dlq_original_offset"]) == (
        topic,
        str(invalid.partition),
        str(invalid.offset),
    )
    assert h2["dlq_consumer_group"] == runner.group
    assert metric_total(runner.metrics, "events_dead_lettered", reason="undecodable") == 1
    assert metric_total(runner.metrics, "events_dead_lettered", reason="invalid") == 1
    # Neither bad message left a trace in the inbox.
    assert await infra.scalar("SELECT count(*) FROM inbox") == 1


async def test_retries_then_dead_letters_failed_and_rejected(
    infra, topics, run_task, metric_total
) -> None:
    producer = await infra.producer()
    attempts: Counter[str] = Counter()

    async def handler(session, event, env) -> None:
        attempts[event.alert_id] += 1
        await infra.inserting_handler(session, event, env)  # rolled back whenever we raise below
        if event.alert_id == "flaky" and attempts["flaky"] <= 2:
            raise ConnectionError("transient")
        if event.alert_id == "always":
            raise RuntimeError("still broken")
        if event.alert_id == "reject":
            raise PermanentError("never acceptable")

    sent = {}
    for alert_id in ("flaky", "always", "reject", "after"):
        sent[alert_id], _ = await infra.send(producer, ALERTS, alert_closed(alert_id, "cust-1"))

    runner = infra.runner(
        {ev.AlertClosed: handler}, [ALERTS], producer=producer, consumer_max_attempts=3
    )
    async with run_task(runner):
        await eventually(lambda: _has(infra, sent["after"]), timeout=25)
    # One partition, one batch: the transient ConnectionError is waited out twice (the whole batch
    # retried, never counted as an attempt); then "always" fails the batch, which is bisected:
    # [flaky, always] fails, [flaky] commits, [always] alone gets its 3 attempts and is
    # dead-lettered; [reject, after] fails, [reject] alone is rejected at once, [after] commits.
    assert attempts == {"flaky": 5, "always": 5, "reject": 2, "after": 1}
    assert sorted(await infra.applied_ids()) == sorted([sent["flaky"], sent["after"]])
    inbox_ids = {r for (r,) in await _rows(infra, "SELECT event_id FROM inbox")}
    assert inbox_ids == {
        sent["flaky"],
        sent["after"],
    }  # failed claims rolled back with their effects

    letters = await read_topic(infra.topic(DLQ), count=2, timeout=15)
    by_id = {envelope_of(r).id: _dlq_headers(r[2]) for r in letters}
    assert by_id.keys() == {sent["always"], sent["reject"]}
    assert by_id[sent["always"]]["dlq_reason"] == "failed"
    assert by_id[sent["always"]]["dlq_attempts"] == "3"
    assert by_id[sent["always"]]["dlq_error"] == "RuntimeError: still broken"
    assert by_id[sent["reject"]]["dlq_reason"] == "rejected"
    assert by_id[sent["reject"]]["dlq_attempts"] == "1"
    assert metric_total(runner.metrics, "events_failed") == 2 + 2 + 3 + 2
    assert metric_total(runner.metrics, "consumer_infrastructure_waits", cause="network") == 2


async def _has(infra, event_id: str) -> bool:
    return event_id in await infra.applied_ids()


async def _rows(infra, sql: str) -> list:
    async with infra.engine.connect() as conn:
        return list(await conn.execute(text(sql)))


async def test_redrive_puts_dead_letters_back_through_the_handler(
    infra, topics, run_task, metric_total
) -> None:
    producer = await infra.producer()
    fixed = False

    async def handler(session, event, env) -> None:
        if not fixed:
            raise RuntimeError("dependency down")
        await infra.inserting_handler(session, event, env)

    event_id, _ = await infra.send(producer, ALERTS, alert_closed("al-1"))
    runner = infra.runner(
        {ev.AlertClosed: handler}, [ALERTS], producer=producer, consumer_max_attempts=2
    )
    async with run_task(runner):
        await eventually(lambda: _dead_lettered(runner, metric_total, 1), timeout=25)
    assert await infra.applied_count() == 0

    # Still broken: the redrive dead-letters it anew, and stops (it does not chase its own new
    # letter).
    assert await asyncio.wait_for(redrive_dead_letters(runner, idle_timeout_s=1), timeout=20) == {
        "dead_lettered": 1
    }
    assert await infra.applied_count() == 0

    fixed = True
    assert await asyncio.wait_for(redrive_dead_letters(runner, idle_timeout_s=1), timeout=20) == {
        "applied": 1
    }
    assert await infra.applied_ids() == [event_id]
    # Drained: a further redrive finds nothing.
    assert await asyncio.wait_for(redrive_dead_letters(runner, idle_timeout_s=1), timeout=20) == {}
    letters = await read_topic(infra.topic(DLQ), count=2, timeout=10)
    assert [envelope_of(r).id for r in letters] == [event_id, event_id]
    # The second letter still names the original record, not the first letter.
    assert _dlq_headers(letters[1][2])["dlq_original_topic"] == infra.topic(ALERTS)


async def _dead_lettered(runner, metric_total, n: int) -> bool:
    return metric_total(runner.metrics, "events_dead_lettered") >= n


async def test_unknown_and_unhandled_types_are_skipped_and_offsets_move_on(
    infra,
    topics,
    run_task,
    metric_total,
    group_offsets,
    topic_end_offsets,
) -> None:
    producer = await infra.producer()
    topic = infra.topic(ALERTS)
    future = envelope.wrap(alert_closed("al-x", "cust-1"), source="/tests")
    future_headers = [
        (k, b"alert.from_the_future.v9" if k == "ce_type" else v) for k, v in future.headers()
    ]
    await producer.send_and_wait(
        topic, value=b'{"whatever": 1}', key=b"cust-1", headers=future_headers
    )
    await infra.send(producer, ALERTS, alert_withdrawn("cust-1", 0))  # known type, not handled here
    last_id, last = await infra.send(producer, ALERTS, alert_closed("al-1", "cust-1"))

    runner = infra.runner({ev.AlertClosed: infra.inserting_handler}, [ALERTS], producer=producer)
    async with run_task(runner):
        await eventually(lambda: _count(infra, 1), timeout=25)

        async def committed() -> bool:
            return (await group_offsets(runner.group)).get(
                (topic, last.partition)
            ) == last.offset + 1

        await eventually(committed, timeout=10)
    assert await infra.applied_ids() == [last_id]
    assert (
        metric_total(runner.metrics, "events_ignored", event_type="alert.from_the_future.v9") == 1
    )
    assert metric_total(runner.metrics, "events_ignored", event_type="alert.withdrawn.v1") == 1
    assert (
        sum((await topic_end_offsets(infra.topic(DLQ))).values()) == 0
    )  # skipped, not dead-lettered


async def test_a_line_per_settled_event_with_its_outcome(infra, topics, caplog) -> None:
    import logging

    from recall_shared.dead_letters import Record

    producer = await infra.producer()
    runner = infra.runner({ev.AlertClosed: infra.inserting_handler}, [ALERTS], producer=producer)
    env = envelope.wrap(alert_closed("al-line"), source="/tests", correlation_id="corr-line")
    good = Record(infra.topic(ALERTS), 0, 7, b"k", env.data, env.headers())
    bad = Record(infra.topic(ALERTS), 0, 8, b"k", b"{}", [("ce_id", b"x")])
    caplog.set_level(logging.INFO, logger="recall_shared")
    assert await runner.process(good) == "applied"
    assert await runner.process(good) == "duplicate"
    assert await runner.process(bad) == "dead_lettered"
    lines = [
        (r.outcome, r.event_id, getattr(r, "correlation_id", None))
        for r in caplog.records
        if hasattr(r, "outcome")
    ]
    assert lines == [
        ("applied", env.id, "corr-line"),
        ("duplicate", env.id, "corr-line"),
        ("dead_lettered", "x", None),
    ]
    applied = next(r for r in caplog.records if getattr(r, "outcome", "") == "applied")
    assert applied.event_type == "alert.closed.v1" and applied.duration_ms >= 0
    assert applied.offset == 7 and applied.batch == 1
