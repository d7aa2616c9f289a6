"""The repeat filter: a broker outage's flood becomes one line per interval, with a count."""

from __future__ import annotations

import logging

from recall_shared.quiet_logs import RepeatFilter


def record(name: str, msg: str, level: int = logging.ERROR, *args: object) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def test_repeats_within_the_interval_are_dropped_and_counted_on_the_next_line() -> None:
    now = [0.0]
    f = RepeatFilter(interval_s=30, clock=lambda: now[0])
    passed = [
        f.filter(record("aiokafka.conn", "Unable connect to node %s", logging.ERROR, i))
        for i in range(6000)
    ]
    assert passed.count(True) == 1
    now[0] = 31.0
    nxt = record("aiokafka.conn", "Unable connect to node %s", logging.ERROR, 1)
    assert f.filter(nxt)
    assert nxt.repeated == 5999 and nxt.repeated_within_s == 30  # type: ignore[attr-defined]


def test_different_messages_and_other_loggers_are_untouched() -> None:
    f = RepeatFilter(interval_s=30, clock=lambda: 0.0)
    assert f.filter(record("aiokafka.conn", "one"))
    assert f.filter(record("aiokafka.conn", "another"))
    assert all(f.filter(record("recall_shared.consumer", "same")) for _ in range(5))
    assert all(f.filter(record("aiokafka.conn", "info", logging.INFO)) for _ in range(5))
    assert not f.filter(record("aiokafka.conn", "one"))
