from __future__ import annotations

import asyncio
import io
import logging
import sys

import orjson
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from recall_shared.logging import (
    JsonFormatter,
    LineHandler,
    correlation_id_var,
    current_correlation_id,
    event_id_var,
    fields_record,
    lines_together,
    log_context,
)
from recall_shared.metrics import Metrics


def _record(msg: str = "hello %s", args: tuple = ("world",), **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("recall.test", logging.WARNING, __file__, 10, msg, args, None)
    record.__dict__.update(extra)
    return record


def test_json_log_carries_correlation_and_event_ids() -> None:
    formatter = JsonFormatter("svc-a")
    with log_context(correlation_id="corr-1", event_id="evt-1"):
        entry = orjson.loads(formatter.format(_record(partition=3)))
    assert entry["correlation_id"] == "corr-1"
    assert entry["event_id"] == "evt-1"
    assert entry["msg"] == "hello world"
    assert (
        entry["level"] == "warning"
        and entry["service"] == "svc-a"
        and entry["logger"] == "recall.test"
    )
    assert entry["partition"] == 3  # extra= fields travel
    assert entry["ts"].endswith("Z")
    assert "args" not in entry and "levelno" not in entry  # LogRecord internals do not


def test_log_context_is_restored_and_nests() -> None:
    formatter = JsonFormatter("svc")
    with log_context(correlation_id="outer"):
        with log_context(event_id="e-2"):
            inner = orjson.loads(formatter.format(_record()))
        after_inner = orjson.loads(formatter.format(_record()))
    outside = orjson.loads(formatter.format(_record()))
    assert inner["correlation_id"] == "outer" and inner["event_id"] == "e-2"
    assert after_inner["correlation_id"] == "outer" and "event_id" not in after_inner
    assert "correlation_id" not in outside and "event_id" not in outside
    assert correlation_id_var.get() is None and event_id_var.get() is None


def test_current_correlation_id_uses_the_context_or_a_fresh_one() -> None:
    with log_context(correlation_id="abc"):
        assert current_correlation_id() == "abc"
    assert current_correlation_id() != current_correlation_id()


def test_exceptions_are_formatted() -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    entry = orjson.loads(JsonFormatter("svc").format(record))
    assert "RuntimeError: boom" in entry["exc"]


def test_metrics_registry_is_per_instance() -> None:
    a, b = Metrics("a"), Metrics("b")
    a.events_consumed.labels("t", "x.v1").inc(3)
    text_a, text_b = a.render().decode(), b.render().decode()
    assert 'events_consumed_total{event_type="x.v1",topic="t"} 3.0' in text_a
    assert 'event_type="x.v1"' not in text_b
    for name in (
        "events_duplicate_total",
        "events_dead_lettered_total",
        "outbox_backlog",
        "consumer_lag",
    ):
        assert f"# TYPE {name.removesuffix('_total')}" in text_b


def test_json_log_carries_the_current_trace_and_span() -> None:
    tracer = TracerProvider().get_tracer("test")
    formatter = JsonFormatter("svc")
    with tracer.start_as_current_span("work") as span:
        entry = orjson.loads(formatter.format(_record()))
    ctx = span.get_span_context()
    assert entry["trace_id"] == format(ctx.trace_id, "032x")
    assert entry["span_id"] == format(ctx.span_id, "016x")
    assert "trace_id" not in orjson.loads(formatter.format(_record()))  # none outside a span


def test_the_timestamp_follows_each_record_across_seconds() -> None:
    formatter = JsonFormatter("svc")
    stamps = []
    for created in (1_700_000_000.25, 1_700_000_000.75, 1_700_000_001.5):
        record = _record()
        record.created, record.msecs = created, (created % 1) * 1000
        stamps.append(orjson.loads(formatter.format(record))["ts"])
    assert stamps == [
        "2023-11-14T22:13:20.250Z",
        "2023-11-14T22:13:20.750Z",
        "2023-11-14T22:13:21.500Z",
    ]


def test_per_logger_levels_silence_one_logger_and_refuse_typos(settings_factory) -> None:
    import pytest

    from recall_shared.logging import configure_logging, parse_levels

    assert parse_levels(" recall_shared.events=warning, a.b=DEBUG ,") == {
        "recall_shared.events": "WARNING",
        "a.b": "DEBUG",
    }
    root, events = logging.getLogger(), logging.getLogger("recall_shared.events")
    saved = (root.handlers[:], root.level, events.level)
    try:
        configure_logging("svc", "INFO", levels="recall_shared.events=WARNING")
        assert not events.isEnabledFor(logging.INFO) and root.isEnabledFor(logging.INFO)
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
        events.setLevel(saved[2])
    with pytest.raises(ValueError, match="LOUD"):
        settings_factory(log_levels="recall_shared.events=LOUD")


def test_a_fields_record_is_the_record_make_record_makes_and_formats_alike() -> None:
    logger = logging.getLogger("recall.test.fields")
    fields: dict[str, object] = {"event_id": "e-1", "correlation_id": None, "offset": 7}
    fast = fields_record(logger, logging.INFO, "event handled", fields)
    slow = logger.makeRecord(
        *(logger.name, logging.INFO, "(unknown file)", 0, "event handled", (), None),
        *("(unknown function)", fields),
    )
    own = {k: v for k, v in fast.__dict__.items() if k != "_fields"}
    assert own.keys() == slow.__dict__.keys()
    times = ("created", "msecs", "relativeCreated")
    assert {k: v for k, v in own.items() if k not in times} == {
        k: v for k, v in slow.__dict__.items() if k not in times
    }
    assert abs(fast.created - slow.created) < 1 and fast.getMessage() == "event handled"
    formatter = JsonFormatter("svc")
    slow.created, slow.msecs = fast.created, fast.msecs
    with log_context(correlation_id="outer", event_id="outer-event"):  # the line's own win
        assert orjson.loads(formatter.format(fast)) == orjson.loads(formatter.format(slow))
        entry = orjson.loads(formatter.format(fast))
    assert entry["event_id"] == "e-1" and entry["correlation_id"] is None and entry["offset"] == 7


def test_a_fields_record_that_something_added_to_formats_what_was_added() -> None:
    record = fields_record(logging.getLogger("x"), logging.WARNING, "m", {"a": 1})
    record.repeated = 3  # as RepeatFilter does
    entry = orjson.loads(JsonFormatter("svc").format(record))
    assert entry["a"] == 1 and entry["repeated"] == 3 and "_fields" not in entry


def test_a_fields_record_refuses_to_overwrite_a_record_attribute() -> None:
    with pytest.raises(KeyError, match="levelno"):
        fields_record(logging.getLogger("x"), logging.INFO, "m", {"levelno": 1})


class _Writes(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return super().write(text)


async def test_lines_logged_together_go_out_in_one_write_at_the_end() -> None:
    stream = _Writes()
    handler = LineHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("recall.test.together")
    logger.addHandler(handler)
    logger.propagate = False
    block_done = asyncio.Event()

    async def later() -> None:  # started within, logs after: the context, not the holding
        await block_done.wait()
        logger.warning("later")

    try:
        with pytest.raises(RuntimeError), lines_together():
            logger.warning("one")
            logger.handle(fields_record(logger, logging.WARNING, "two", {"n": 2}))
            task = asyncio.create_task(later())
            await asyncio.to_thread(logger.warning, "from a thread")  # not held
            assert stream.writes == ["from a thread\n"]  # the block's lines still held
            raise RuntimeError("the block fails: its lines still go out")
        logger.warning("after")
        block_done.set()
        await task
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    assert stream.writes == ["from a thread\n", "one\ntwo\n", "after\n", "later\n"]


def test_a_fields_record_with_its_own_context_formats_without_the_works() -> None:
    """The runner's event line says its ids and trace itself: the formatter adds nothing of the
    context it is formatted in (an outer correlation id, event id or span)."""
    formatter = JsonFormatter("svc")
    logger = logging.getLogger("recall.test.own")
    span = TracerProvider().get_tracer("t").start_span("outer")
    with trace.use_span(span), log_context(correlation_id="outer", event_id="outer-event"):
        own = orjson.loads(
            formatter.format(fields_record(logger, logging.INFO, "m", {"n": 1}, own_context=True))
        )
        plain = orjson.loads(formatter.format(fields_record(logger, logging.INFO, "m", {"n": 1})))
    span.end()
    assert own["n"] == 1 and not {"correlation_id", "event_id", "trace_id", "span_id"} & own.keys()
    assert plain["correlation_id"] == "outer" and plain["event_id"] == "outer-event"
    assert plain["trace_id"] == format(span.get_span_context().trace_id, "032x")
