"""Bad input on Kafka, each kind between valid records on one partition: every bad record is
dead-lettered at once with the reason that names it (``undecodable``: not a CloudEvent we can read;
``invalid``: not the event its type says, including what storage cannot hold), an unknown type is a
counted skip, and every valid record around them is applied. Written against the runner's public
behaviour only: records in, rows in the database, letters with their ``dlq_*`` headers, metrics."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import orjson
import pytest

from recall_shared import envelope
from recall_shared import events as ev
from recall_shared.testing import eventually, read_topic
from recall_shared.topics import ALERTS, dead_letter_topic

pytestmark = pytest.mark.integration

DLQ = dead_letter_topic("recall-intake")
KEY = b"cust-bad"  # one key: every record on one partition, each behind the one before
UNKNOWN_TYPE = "alert.exploded.v9"


@dataclass
class Bad:
    name: str
    value: bytes | None
    headers: list[tuple[str, bytes]]
    reason: str | None  # the letter's dlq_reason; None: skipped, not dead-lettered
    error: str  # in dlq_error


def _closed(alert_id: str) -> ev.AlertClosed:
    return ev.AlertClosed.model_validate(
        {
            "alert_id": alert_id,
            "customer_id": "cust-bad",
            "recall_id": "rc-1",
            "closed_at": "2025-03-14T12:00:00+00:00",
        }
    )


def _headers(event: ev.Event, **replace: bytes | None) -> list[tuple[str, bytes]]:
    """The event's CloudEvents headers, with some replaced (a None value drops the header)."""
    out = []
    for name, value in envelope.wrap(event, source="/tests/bad").headers():
        if name in replace:
            if replace[name] is None:
                continue
            value = replace[name]  # type: ignore[assignment]
        out.append((name, value))
    return out


def _body(event: ev.Event, placeholder: str, raw: bytes) -> bytes:
    """The event's JSON with ``placeholder`` (a string value) replaced by raw JSON text."""
    data = envelope.serialize(event)
    assert f'"{placeholder}"'.encode() in data
    return data.replace(f'"{placeholder}"'.encode(), raw)


def _withdrawn(version_json: bytes) -> tuple[bytes, list[tuple[str, bytes]]]:
    event = ev.AlertWithdrawn(
        alert_id="al-w",
        alert_version=424242,
        customer_id="cust-bad",
        recall_id="rc-1",
        recall_version=1,
        reason="corrected",
    )
    body = envelope.serialize(event).replace(b"424242", version_json)
    return body, _headers(event)


def bad_records() -> list[Bad]:
    one = _closed("al-x")
    huge = _closed("al-huge")
    pad = 1_000_000 - len(envelope.serialize(huge))
    huge_body = _body(huge, "rc-1", orjson.dumps("r" * pad))  # a recall id of 1 MB
    assert 999_000 < len(huge_body) <= 1_000_000
    return [
        Bad("not JSON", b"{not json", _headers(one), "invalid", "not JSON"),
        Bad("JSON, not an object", b"[1, 2]", _headers(one), "invalid", "InvalidEvent"),
        Bad("JSON null body", b"null", _headers(one), "invalid", "InvalidEvent"),
        Bad("no ce_id", envelope.serialize(one), _headers(one, ce_id=None), "undecodable", "ce_id"),
        Bad(
            "no ce_type",
            envelope.serialize(one),
            _headers(one, ce_type=None),
            "undecodable",
            "ce_type",
        ),
        Bad(
            "wrong ce_specversion",
            envelope.serialize(one),
            _headers(one, ce_specversion=b"0.3"),
            "undecodable",
            "ce_specversion",
        ),
        Bad(
            "ce_time not a time",
            envelope.serialize(one),
            _headers(one, ce_time=b"yesterday"),
            "undecodable",
            "ce_time",
        ),
        Bad(
            "non-UTF-8 header",
            envelope.serialize(one),
            _headers(one, ce_source=b"/tests/\xff\xfe"),
            "undecodable",
            "UTF-8",
        ),
        Bad("no headers at all", envelope.serialize(one), [], "undecodable", "ce_id"),
        Bad("null body (no value)", None, _headers(one), "undecodable", "no body"),
        Bad(
            "NUL in a field",
            _body(one, "al-x", b'"al\\u0000x"'),
            _headers(one),
            "invalid",
            "NUL character",
        ),
        Bad(
            "lone surrogate in a field",
            _body(one, "al-x", b'"al\\ud800x"'),
            _headers(one),
            "invalid",
            "surrogate",
        ),
        Bad("a 1 MB body", huge_body, _headers(huge), "invalid", "at most 36 characters"),
        Bad("2**63", *_withdrawn(b"9223372036854775808"), "invalid", "alert_version"),
        Bad("10**30", *_withdrawn(b"1000000000000000000000000000000"), "invalid", "alert_version"),
        Bad(
            "required field missing", b'{"alert_id": "al-y"}', _headers(one), "invalid", "closed_at"
        ),
        Bad(
            "unknown ce_type",
            envelope.serialize(one),
            _headers(one, ce_type=UNKNOWN_TYPE.encode()),
            None,
            "",
        ),
    ]


@pytest.fixture
async def topics(infra) -> None:
    await infra.create_topics(ALERTS, DLQ)


async def test_each_kind_of_bad_record_is_dead_lettered_or_skipped_and_the_good_ones_applied(
    infra, topics, run_task, metric_total
) -> None:
    producer = await infra.producer()
    topic = infra.topic(ALERTS)
    cases = bad_records()
    good_ids: list[str] = []
    bad_offsets: dict[int, Bad] = {}
    for i, bad in enumerate([None, *cases]):
        if bad is not None:
            meta = await producer.send_and_wait(
                topic, value=bad.value, key=KEY, headers=bad.headers
            )
            bad_offsets[meta.offset] = bad
        good = _closed(f"al-good-{i}")
        good_ids.append((await infra.send(producer, ALERTS, good, event_id=f"good-{i}"))[0])

    handled: Counter[str] = Counter()

    async def handler(session, event, env) -> None:
        handled[env.id] += 1
        await infra.inserting_handler(session, event, env)

    runner = infra.runner(
        {ev.AlertClosed: handler, ev.AlertWithdrawn: handler}, [ALERTS], producer=producer
    )
    lettered = [b for b in cases if b.reason is not None]
    async with run_task(runner):

        async def all_good_applied() -> bool:
            return await infra.applied_count() >= len(good_ids)

        await eventually(all_good_applied, timeout=60)
        letters = await read_topic(infra.topic(DLQ), count=len(lettered), timeout=30)

    # Every valid record applied, in order, once; no bad one reached a handler (none was retried).
    assert await infra.applied_ids() == good_ids
    assert handled == Counter(good_ids)

    assert len(letters) == len(lettered), [b.name for b in lettered]
    by_name: dict[str, dict[str, str]] = {}
    for key, _, raw in letters:
        hs = {k: v.decode() for k, v in raw.headers if k.startswith("dlq_")}
        bad = bad_offsets[int(hs["dlq_original_offset"])]
        assert key == KEY and raw.value == bad.value, bad.name
        assert hs["dlq_original_topic"] == topic and hs["dlq_consumer_group"] == runner.group
        by_name[bad.name] = hs
    for bad in lettered:
        hs = by_name[bad.name]
        assert hs["dlq_reason"] == bad.reason, (bad.name, hs)
        assert bad.error in hs["dlq_error"], (bad.name, hs["dlq_error"])
        assert hs["dlq_attempts"] == "1", bad.name  # refused at once, never retried
    for reason, n in Counter(b.reason for b in lettered).items():
        assert metric_total(runner.metrics, "events_dead_lettered", reason=reason) == n

    # The unknown type: skipped and counted, not dead-lettered.
    assert metric_total(runner.metrics, "events_ignored", event_type=UNKNOWN_TYPE) == 1
    assert metric_total(runner.metrics, "events_dead_lettered", reason="failed") == 0
