"""CloudEvents 1.0 in Kafka binary mode.

Attributes travel as ``ce_*`` headers, the body is the event's JSON. The correlation id travels as
the ``ce_correlationid`` extension and the id of the event that caused this one as
``ce_causationid``. The W3C trace context travels in the CloudEvents distributed-tracing extension
(``ce_traceparent``, ``ce_tracestate``), and also as the plain ``traceparent`` / ``tracestate``
headers that Kafka tracing tools read; both are optional (recall_shared.telemetry).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson
from pydantic import ValidationError

from recall_shared.events import EVENTS_BY_TYPE, SCREENED_JSON, Event
from recall_shared.shared_parts import loads_sharing
from recall_shared.telemetry import trace_headers as current_trace_context

SPECVERSION = "1.0"
CONTENT_TYPE = "application/json"

Headers = list[tuple[str, bytes]]


class EnvelopeError(ValueError):
    """The message is not a CloudEvent we can read (missing or malformed attributes, body not
    JSON)."""


class UnknownEventType(LookupError):
    """A well-formed event of a type this build does not know (a newer major version, say)."""


class InvalidEvent(ValueError):
    """The body does not satisfy the event type's schema (which refuses what storage cannot hold:
    NUL, lone surrogates, out-of-range numbers, strings longer than their field), or an event cannot
    be encoded."""


@dataclass(frozen=True)
class Envelope:
    id: str
    type: str
    source: str
    time: datetime
    subject: str | None
    data: bytes
    correlation_id: str | None = None
    causation_id: str | None = None
    specversion: str = SPECVERSION
    extra_headers: dict[str, bytes] = field(default_factory=dict)
    traceparent: str | None = None
    tracestate: str | None = None

    def headers(self) -> Headers:
        hs: Headers = [
            ("ce_specversion", self.specversion.encode()),
            ("ce_id", self.id.encode()),
            ("ce_type", self.type.encode()),
            ("ce_source", self.source.encode()),
            ("ce_time", self.time.isoformat().encode()),
            ("content-type", CONTENT_TYPE.encode()),
        ]
        if self.subject is not None:
            hs.append(("ce_subject", self.subject.encode()))
        if self.correlation_id is not None:
            hs.append(("ce_correlationid", self.correlation_id.encode()))
        if self.causation_id is not None:
            hs.append(("ce_causationid", self.causation_id.encode()))
        hs.extend(trace_context_headers(self.traceparent, self.tracestate))
        return hs

    @property
    def trace_context(self) -> dict[str, str]:
        """``traceparent`` / ``tracestate`` as a W3C carrier (empty when the event has none)."""
        carrier = {}
        if self.traceparent:
            carrier["traceparent"] = self.traceparent
            if self.tracestate:
                carrier["tracestate"] = self.tracestate
        return carrier


# The distributed-tracing extension's headers, and the plain W3C ones beside them.
TRACE_HEADERS = ("ce_traceparent", "traceparent", "ce_tracestate", "tracestate")


def trace_context_headers(traceparent: str | None, tracestate: str | None) -> Headers:
    if not traceparent:
        return []
    hs: Headers = [("ce_traceparent", traceparent.encode()), ("traceparent", traceparent.encode())]
    if tracestate:
        hs += [("ce_tracestate", tracestate.encode()), ("tracestate", tracestate.encode())]
    return hs


class FanOutHeaders:
    """The headers of many events that differ only in id and subject (one fan-out), built once: a
    recall raising a million alerts should not encode the same seven attributes a million times."""

    def __init__(
        self,
        *,
        type: str,
        source: str,
        time: datetime,
        correlation_id: str | None,
        causation_id: str | None,
        trace_context: Mapping[str, str] | None = None,
    ) -> None:
        """``trace_context``: the W3C carrier of the records; by default the current span's."""
        carrier = dict(trace_context if trace_context is not None else current_trace_context())
        self._base = Envelope(
            id="",
            type=type,
            source=source,
            time=time,
            subject="",
            data=b"",
            correlation_id=correlation_id,
            causation_id=causation_id,
            traceparent=carrier.get("traceparent"),
            tracestate=carrier.get("tracestate"),
        ).headers()
        names = [name for name, _ in self._base]
        self._id_at, self._subject_at = names.index("ce_id"), names.index("ce_subject")

    def __call__(self, event_id: str, subject: str) -> Headers:
        headers = self._base.copy()
        headers[self._id_at] = ("ce_id", event_id.encode())
        headers[self._subject_at] = ("ce_subject", subject.encode())
        return headers


def serialize(event: Event) -> bytes:
    try:
        return orjson.dumps(event.model_dump(mode="json"))
    except (
        orjson.JSONEncodeError
    ) as exc:  # a lone surrogate or a >64-bit integer, in an unvalidated event
        raise InvalidEvent(f"{event.event_type}: cannot be encoded: {exc}") from exc


def check_emittable(envelope: Envelope, cls: type[Event]) -> None:
    """Decode ``envelope`` as every consumer of ``cls`` will, raising InvalidEvent if one would
    refuse it.

    Events built the usual way were validated already; this catches the ones built without
    validation (``model_construct``, ``model_copy(update=...)``), so no service emits an event
    another cannot apply.
    """
    parse(envelope, {envelope.type: cls})


def wrap(
    event: Event,
    *,
    source: str,
    correlation_id: str | None = None,
    causation_id: str | None = None,
    event_id: str | None = None,
    time: datetime | None = None,
    trace_context: Mapping[str, str] | None = None,
) -> Envelope:
    carrier = trace_context or {}
    return Envelope(
        id=event_id or str(uuid.uuid4()),
        type=event.event_type,
        source=source,
        time=time or datetime.now(UTC),
        subject=event.subject(),
        data=serialize(event),
        correlation_id=correlation_id,
        causation_id=causation_id,
        traceparent=carrier.get("traceparent"),
        tracestate=carrier.get("tracestate"),
    )


_REQUIRED = ("ce_id", "ce_type", "ce_source", "ce_specversion")
_new_object = object.__new__


def read_headers(
    headers: Iterable[tuple[str, bytes | None]] | None, value: bytes | None
) -> Envelope:
    """Read the envelope of a Kafka record; raise EnvelopeError when it is not a readable
    CloudEvent."""
    # Once per consumed record, so in one pass over the headers (a repeated header: the last one
    # counts), only the ``ce_*`` ones decoded, as they come.
    if not isinstance(headers, list | tuple):  # read twice when a ce_* header is not UTF-8
        headers = list(headers or ())
    attrs: dict[str, str] = {}
    extra: dict[str, bytes] = {}
    for k, v in headers:
        if k[:3] == "ce_":
            try:
                attrs[k] = v.decode() if v is not None else ""
            except UnicodeDecodeError:
                # A later repeat may replace it: whether it counts, read in two steps.
                attrs, extra = _two_steps(headers)
                break
        else:
            extra[k] = v if v is not None else b""
    get = attrs.get
    if not (get("ce_id") and get("ce_type") and get("ce_source") and get("ce_specversion")):
        missing = [a for a in _REQUIRED if not get(a)]
        raise EnvelopeError(f"missing CloudEvents headers: {', '.join(missing)}")
    if attrs["ce_specversion"] != SPECVERSION:
        raise EnvelopeError(f"unsupported ce_specversion {attrs['ce_specversion']!r}")
    if value is None:
        raise EnvelopeError("message has no body")
    stamp = get("ce_time")
    try:
        time = datetime.fromisoformat(stamp) if stamp else datetime.now(UTC)
    except ValueError as exc:
        raise EnvelopeError(f"ce_time is not an ISO-8601 timestamp: {stamp!r}") from exc
    traceparent = get("ce_traceparent") or _plain(extra, "traceparent")
    tracestate = get("ce_tracestate") or _plain(extra, "tracestate")
    if "traceparent" in extra or "tracestate" in extra:
        extra = {k: v for k, v in extra.items() if k not in TRACE_HEADERS}
    # Every field at once: a frozen dataclass's __init__ sets each through object.__setattr__,
    # a quarter of this function's time (a unit test checks that every field is set here).
    envelope = _new_object(Envelope)
    envelope.__dict__.update(
        id=attrs["ce_id"],
        type=attrs["ce_type"],
        source=attrs["ce_source"],
        time=time,
        subject=get("ce_subject"),
        data=value,
        correlation_id=get("ce_correlationid"),
        causation_id=get("ce_causationid"),
        specversion=attrs["ce_specversion"],
        extra_headers=extra,
        traceparent=traceparent,
        tracestate=tracestate,
    )
    return envelope


def _two_steps(
    headers: Iterable[tuple[str, bytes | None]],
) -> tuple[dict[str, str], dict[str, bytes]]:
    """The ``ce_*`` headers decoded (the last of a repeated one counts; EnvelopeError when that
    one is not UTF-8) and the others, as read_headers' one pass reads them."""
    raw: dict[str, bytes | None] = {}
    extra: dict[str, bytes] = {}
    for k, v in headers:
        if k[:3] == "ce_":
            raw[k] = v
        else:
            extra[k] = v if v is not None else b""
    try:
        return {k: v.decode() if v is not None else "" for k, v in raw.items()}, extra
    except UnicodeDecodeError as exc:
        raise EnvelopeError(f"ce_* header is not UTF-8: {exc}") from exc


def _plain(headers: dict[str, bytes], name: str) -> str | None:
    """A plain (not ``ce_``) header as text; None when absent or not text."""
    value = headers.get(name)
    if not value:
        return None
    try:
        return value.decode()
    except UnicodeDecodeError:
        return None


# What storage refuses can reach a model from JSON only as a \u0000 escape: orjson refuses lone
# surrogates itself, and every integer field is bounded within 64 bits (a unit test walks the
# contracts). Bytes without it skip the models' own screen, most of the cost of decoding an alert.
_NUL_ESCAPE = b"\\u0000"
_SCREENED = {SCREENED_JSON: True}


def parse(envelope: Envelope, known: dict[str, type[Event]] = EVENTS_BY_TYPE) -> Event:
    cls = known.get(envelope.type)
    if cls is None:
        raise UnknownEventType(envelope.type)
    return parse_as(envelope, cls)


def parse_as(envelope: Envelope, cls: type[Event]) -> Event:
    """The envelope's body as a ``cls`` (its type already looked up); raises EnvelopeError (not
    JSON) or InvalidEvent."""
    screened = _NUL_ESCAPE not in envelope.data
    context = _SCREENED if screened else None
    try:
        # A fan-out's recall content validated once, and not even decoded again.
        payload = loads_sharing(cls, envelope.data, screened)
    except orjson.JSONDecodeError as exc:
        raise EnvelopeError(f"body is not JSON: {exc}") from exc
    try:
        return cls.model_validate(payload, context=context)
    except ValidationError as exc:
        raise InvalidEvent(f"{envelope.type}: {_short_errors(exc)}") from exc


def _short_errors(exc: ValidationError, limit: int = 5) -> str:
    parts = []
    for err in exc.errors()[:limit]:
        loc = ".".join(str(p) for p in err["loc"]) or "(body)"
        parts.append(f"{loc}: {err['msg']}")
    more = len(exc.errors()) - limit
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


def to_structured(
    event: Event, *, source: str, event_id: str | None = None, time: datetime | None = None
) -> dict:
    """The event as a CloudEvents structured-mode JSON object (files, HTTP APIs): attributes and
    data together."""
    return {
        "specversion": SPECVERSION,
        "id": event_id or str(uuid.uuid4()),
        "type": event.event_type,
        "source": source,
        "time": (time or datetime.now(UTC)).isoformat(),
        "subject": event.subject(),
        "datacontenttype": CONTENT_TYPE,
        "data": event.model_dump(mode="json"),
    }


def from_structured(
    obj: object, known: dict[str, type[Event]] = EVENTS_BY_TYPE
) -> tuple[str, Event]:
    """(event id, event) from a structured-mode CloudEvent; raises EnvelopeError, UnknownEventType
    or InvalidEvent."""
    if not isinstance(obj, dict):
        raise EnvelopeError("a structured CloudEvent must be a JSON object")
    missing = [a for a in ("id", "type", "specversion", "data") if a not in obj]
    if missing:
        raise EnvelopeError(f"missing CloudEvents attributes: {', '.join(missing)}")
    if obj["specversion"] != SPECVERSION:
        raise EnvelopeError(f"unsupported specversion {obj['specversion']!r}")
    cls = known.get(obj["type"])
    if cls is None:
        raise UnknownEventType(str(obj["type"]))
    try:
        return str(obj["id"]), cls.model_validate(obj["data"])
    except ValidationError as exc:
        raise InvalidEvent(f"{obj['type']}: {_short_errors(exc)}") from exc
