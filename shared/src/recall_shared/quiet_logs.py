"""A logging filter that says a repeating complaint once per interval, with a count.

While a broker is unreachable, Kafka's client logs the same connection error thousands of times a
second. The first line of a kind passes; repeats within ``interval_s`` are counted and dropped; the
next one after the interval passes with ``repeated`` (how many were dropped) and the interval
length. A kind is the logger and the message template, so different errors are never merged.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable

NOISY_LOGGERS = ("aiokafka", "kafka", "recall_shared.librdkafka")


class RepeatFilter(logging.Filter):
    def __init__(
        self,
        *,
        interval_s: float = 30.0,
        loggers: Iterable[str] = NOISY_LOGGERS,
        clock: Callable[[], float] = time.monotonic,
        max_kinds: int = 1000,
    ) -> None:
        super().__init__()
        self.interval_s = interval_s
        self.prefixes = tuple(loggers)
        self.clock = clock
        self.max_kinds = max_kinds
        self._kinds: dict[tuple[str, str], tuple[float, int]] = {}  # kind -> (passed at, dropped)
        self._lock = threading.Lock()

    def _watched(self, name: str) -> bool:
        return any(name == p or name.startswith(p + ".") for p in self.prefixes)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or not self._watched(record.name):
            return True
        kind = (record.name, str(record.msg))
        now = self.clock()
        with self._lock:
            passed_at, dropped = self._kinds.get(kind, (None, 0))
            if passed_at is not None and now - passed_at < self.interval_s:
                self._kinds[kind] = (passed_at, dropped + 1)
                return False
            if len(self._kinds) >= self.max_kinds and kind not in self._kinds:
                self._kinds.clear()
            self._kinds[kind] = (now, 0)
        if dropped:
            record.repeated = dropped
            record.repeated_within_s = self.interval_s
        return True
