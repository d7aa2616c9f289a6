"""JSON logs carrying the event id, the correlation id and the trace of the work in hand.

The ids live in context variables, set by the consumer runner for each message and by the HTTP
middleware for each request, so every log line inside that work carries them without passing them
around. The trace and span ids are OpenTelemetry's current span (itself a context variable), when
there is one (recall_shared.telemetry).
"""

from __future__ import annotations

import contextvars
import logging
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import orjson
from opentelemetry import trace

from recall_shared.quiet_logs import RepeatFilter

correlation_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "correlation_id", default=None
)
event_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("event_id", default=None)


@dataclass
class RequestFacts:
    """What the access log line of a request says that only its handling learns: who called.
    Mutable on purpose: a dependency that authenticates may run in a copy of the request's context,
    where a ContextVar.set would not reach the middleware."""

    principal: str = "anonymous"


request_facts_var: contextvars.ContextVar[RequestFacts | None] = contextvars.ContextVar(
    "request_facts", default=None
)


def note_principal(kind: str) -> None:
    """Record the kind of caller of the request in hand (customer, seller, operator) for its
    access log line; outside a request, nothing."""
    facts = request_facts_var.get()
    if facts is not None:
        facts.principal = kind


_RESERVED = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


def new_correlation_id() -> str:
    return uuid.uuid4().hex


def current_correlation_id() -> str:
    """The correlation id of the work in hand, or a fresh one when none started it."""
    return correlation_id_var.get() or new_correlation_id()


@contextmanager
def log_context(
    *, correlation_id: str | None = None, event_id: str | None = None
) -> Iterator[None]:
    tokens = []
    if correlation_id is not None:
        tokens.append((correlation_id_var, correlation_id_var.set(correlation_id)))
    if event_id is not None:
        tokens.append((event_id_var, event_id_var.set(event_id)))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


# A fields record (fields_record) holds LogRecord's own attributes, its fields and ``_fields``.
_RECORD_ATTRIBUTES = len(logging.LogRecord("", 0, "", 0, "", None, None).__dict__)
_MILLIS = tuple(f".{ms:03d}Z" for ms in range(1000))


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service
        self._second = -1
        self._stamp = ""

    def _timestamp(self, created: float, msecs: float) -> str:
        # One strftime per second, not per line: the per-event lines come by the thousand.
        second = int(created)
        if second != self._second:
            self._second, self._stamp = (
                second,
                time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)),
            )
        return self._stamp + _MILLIS[int(msecs)]

    def format(self, record: logging.LogRecord) -> str:
        attributes = record.__dict__
        entry: dict[str, object] = {
            "ts": self._timestamp(record.created, record.msecs),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        # A fields record that nothing added to since: its fields are its extras, taken at once.
        fields: dict[str, object] | None = attributes.get("_fields")
        own_context = "_own_context" in attributes
        if fields is not None and len(attributes) != _RECORD_ATTRIBUTES + 1 + own_context + len(
            fields
        ):
            fields = None
        if fields is None:
            fields = {
                key: value
                for key, value in attributes.items()
                if key not in _RESERVED and key[0] != "_"
            }
        # What the work in hand says, unless the line says it itself.
        if not own_context:
            if "correlation_id" not in fields and (cid := correlation_id_var.get()) is not None:
                entry["correlation_id"] = cid
            if "event_id" not in fields and (eid := event_id_var.get()) is not None:
                entry["event_id"] = eid
            if "trace_id" not in fields:
                span = trace.get_current_span().get_span_context()
                if span.is_valid:
                    entry["trace_id"] = format(span.trace_id, "032x")
                    entry["span_id"] = format(span.span_id, "016x")
        entry.update(fields)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


_templates: dict[tuple[str, int, str], dict[str, object]] = {}
_NO_FILE, _NO_FUNCTION = "(unknown file)", "(unknown function)"  # Logger._log's without a source
_new_record = logging.LogRecord.__new__


def fields_record(
    logger: logging.Logger,
    level: int,
    msg: str,
    fields: dict[str, object],
    *,
    own_context: bool = False,
) -> logging.LogRecord:
    """A record of ``msg`` whose extra attributes are ``fields``, as ``logger.makeRecord(...,
    extra=fields)`` makes it at about half the cost (the runner writes one line per event it
    applies): a copy of a template record of its kind with the time and the fields set. The
    thread and process attributes are the template's (the consumer runs on one thread); file and
    function unknown, as with ``logging._srcfile`` off (configure_logging). ``own_context``: the
    fields are the line's whole context (its ids, its trace or none), so the formatter does not
    add the work's context variables and current span (three lookups per line)."""
    if not _RESERVED.isdisjoint(fields):
        raise KeyError(
            f"attempt to overwrite a LogRecord attribute: {sorted(_RESERVED & fields.keys())}"
        )
    key = (logger.name, level, msg)
    template = _templates.get(key)
    if template is None:
        made = logging.LogRecord(logger.name, level, _NO_FILE, 0, msg, (), None, _NO_FUNCTION)
        template = _templates[key] = dict(made.__dict__)
    record = _new_record(logging.LogRecord)
    attributes = record.__dict__
    attributes.update(template)
    now = time.time()
    attributes["created"] = now
    attributes["msecs"] = int((now - int(now)) * 1000) + 0.0
    attributes["relativeCreated"] = (now - logging._startTime) * 1000  # type: ignore[attr-defined]
    attributes.update(fields)
    attributes["_fields"] = fields
    if own_context:
        attributes["_own_context"] = True
    return record


class _Held:
    """The lines a ``lines_together`` block holds, per handler, while it is open and only those of
    its own thread (a thread started within inherits the context variable, not the holding). A task
    started within and logging while the block is open adds its lines to the block's."""

    def __init__(self) -> None:
        self.thread = threading.get_ident()
        self.open = True
        self.lines: dict[LineHandler, list[str]] = {}

    def holds(self) -> bool:
        return self.open and self.thread == threading.get_ident()


_held_lines: contextvars.ContextVar[_Held | None] = contextvars.ContextVar(
    "held_lines", default=None
)


class LineHandler(logging.StreamHandler):
    """A stream handler that writes the lines of a ``lines_together`` block at once, at its end
    (one write for a batch's event lines instead of one each), and every other line as it comes."""

    def handle(self, record: logging.LogRecord) -> bool:
        held = _held_lines.get()
        if held is None or not held.holds():
            return super().handle(record)
        if not self.filter(record):
            return False
        # Only the block's own thread appends to its lines: no lock until they are written.
        try:
            held.lines.setdefault(self, []).append(self.format(record) + self.terminator)
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)
        return True

    def write_lines(self, lines: list[str]) -> None:
        with self.lock:  # type: ignore[union-attr]
            try:
                self.stream.write("".join(lines))
                self.stream.flush()
            except RecursionError:
                raise
            except Exception:
                self.handleError(logging.makeLogRecord({"msg": f"{len(lines)} held lines"}))


@contextmanager
def lines_together() -> Iterator[None]:
    """Lines logged within (by this task) go out together at the end, also when it raises. For a
    short block without awaits, such as the lines of a batch just applied."""
    held = _Held()
    token = _held_lines.set(held)
    try:
        yield
    finally:
        held.open = False
        _held_lines.reset(token)
        for handler, lines in held.lines.items():
            handler.write_lines(lines)


def configure_logging(
    service: str, level: str = "INFO", json: bool = True, levels: str = ""
) -> None:
    """``levels``: per-logger levels, ``name=LEVEL`` separated by commas, e.g.
    ``recall_shared.events=WARNING`` to drop the per-event lines of a service that applies millions
    of events (see parse_levels)."""
    # No line shows the caller's file and line, the thread or the process: not looking them up
    # makes each record cheaper (the logging HOWTO's "Optimization"), which counts at one line per
    # consumed event.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = LineHandler(sys.stderr)
    # While a broker is down its client repeats the same error thousands of times a second.
    handler.addFilter(RepeatFilter())
    if json:
        handler.setFormatter(JsonFormatter(service))
    else:
        handler.setFormatter(
            logging.Formatter(f"%(asctime)s %(levelname)s {service} %(name)s: %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiokafka is chatty at INFO about every rebalance step; warnings still show.
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, root.level))
    for name, logger_level in parse_levels(levels).items():
        logging.getLogger(name).setLevel(logger_level)


def parse_levels(levels: str) -> dict[str, str]:
    """``"a=WARNING, b.c=debug"`` -> ``{"a": "WARNING", "b.c": "DEBUG"}``; ValueError naming a bad
    entry."""
    parsed: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in levels.split(","))):
        name, sep, value = part.partition("=")
        value = value.strip().upper()
        if not sep or not name.strip() or value not in logging.getLevelNamesMapping():
            raise ValueError(f"log level entry {part!r}: expected logger=LEVEL (DEBUG, INFO, ...)")
        parsed[name.strip()] = value
    return parsed
