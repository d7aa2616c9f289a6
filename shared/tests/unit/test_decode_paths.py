"""The runner's cheaper decode gives what the contract's plain decode gives: ``read_headers`` (one
pass, the envelope filled at once) reads any header list as the straightforward reading does, and
``parse`` (a fan-out's recall content validated once, recall_shared.shared_parts) returns the event
that full validation of the JSON returns, or fails with the same error kind and message."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from recall_shared import events as ev
from recall_shared import shared_parts
from recall_shared.envelope import (
    SPECVERSION,
    TRACE_HEADERS,
    Envelope,
    EnvelopeError,
    InvalidEvent,
    parse,
    read_headers,
    wrap,
)
from recall_shared.testing import make_alert

# --------------------------------------------------------------------------- headers


def _straight_reading(headers: list[tuple[str, bytes | None]], value: bytes | None) -> Envelope:
    """The envelope as the headers say it, read the plain way (the runner's reading before it was
    made cheaper): the oracle for read_headers."""
    hs = {k: (v if v is not None else b"") for k, v in headers}
    try:
        attrs = {k: v.decode() for k, v in hs.items() if k.startswith("ce_")}
    except UnicodeDecodeError as exc:
        raise EnvelopeError(f"ce_* header is not UTF-8: {exc}") from exc
    missing = [a for a in ("ce_id", "ce_type", "ce_source", "ce_specversion") if not attrs.get(a)]
    if missing:
        raise EnvelopeError(f"missing CloudEvents headers: {', '.join(missing)}")
    if attrs["ce_specversion"] != SPECVERSION:
        raise EnvelopeError(f"unsupported ce_specversion {attrs['ce_specversion']!r}")
    if value is None:
        raise EnvelopeError("message has no body")
    try:
        time = datetime.fromisoformat(attrs["ce_time"]) if attrs.get("ce_time") else None
    except ValueError as exc:
        raise EnvelopeError(f"ce_time is not an ISO-8601 timestamp: {attrs['ce_time']!r}") from exc

    def plain(name: str) -> str | None:
        try:
            return hs[name].decode() or None if hs.get(name) else None
        except UnicodeDecodeError:
            return None

    return Envelope(
        id=attrs["ce_id"],
        type=attrs["ce_type"],
        source=attrs["ce_source"],
        time=time,  # type: ignore[arg-type]  # None: "now", compared apart
        subject=attrs.get("ce_subject"),
        data=value,
        correlation_id=attrs.get("ce_correlationid"),
        causation_id=attrs.get("ce_causationid"),
        specversion=attrs["ce_specversion"],
        extra_headers={
            k: v for k, v in hs.items() if not k.startswith("ce_") and k not in TRACE_HEADERS
        },
        traceparent=attrs.get("ce_traceparent") or plain("traceparent"),
        tracestate=attrs.get("ce_tracestate") or plain("tracestate"),
    )


_NAMES = st.sampled_from(
    [
        "ce_id",
        "ce_type",
        "ce_source",
        "ce_specversion",
        "ce_time",
        "ce_subject",
        "ce_correlationid",
        "ce_causationid",
        "ce_traceparent",
        "ce_tracestate",
        "ce_other",
        "traceparent",
        "tracestate",
        "content-type",
        "x-custom",
        "c",
        "",
    ]
)
_VALUES = st.one_of(
    st.none(),
    st.sampled_from(
        [
            *(b"", b"1.0", b"0.3", b"e-1", b"alert.raised.v1", b"/s", b"\xff\xfe", b"yesterday"),
            *(b"2026-01-02T03:04:05+00:00", b"00-" + b"a" * 32 + b"-" + b"b" * 16 + b"-01"),
        ]
    ),
    st.binary(max_size=8),
)
_VALID = [
    ("ce_id", b"e-1"),
    ("ce_type", b"alert.raised.v1"),
    ("ce_source", b"/s"),
    ("ce_specversion", b"1.0"),
]


@settings(max_examples=400, deadline=None)
@given(
    base=st.booleans(),
    headers=st.lists(st.tuples(_NAMES, _VALUES), max_size=12),
    value=st.one_of(st.none(), st.just(b"{}")),
)
def test_read_headers_reads_any_header_list_as_the_straight_reading(
    base: bool, headers: list[tuple[str, bytes | None]], value: bytes | None
) -> None:
    given_headers = (_VALID if base else []) + headers
    try:
        expected = _straight_reading(given_headers, value)
    except EnvelopeError as exc:
        with pytest.raises(EnvelopeError) as caught:
            read_headers(given_headers, value)
        assert str(caught.value) == str(exc)
        return
    read = read_headers(given_headers, value)
    if expected.time is None:  # no ce_time: the time of reading
        assert abs((read.time - datetime.now(UTC)).total_seconds()) < 60
        read = dataclasses.replace(read, time=None)
    assert read == expected


@pytest.mark.parametrize("as_given", [list, tuple, iter])
def test_a_header_not_utf8_counts_only_when_no_repeat_replaces_it(as_given) -> None:
    bad, good = ("ce_subject", b"\xff"), ("ce_subject", b"s-1")
    assert read_headers(as_given([*_VALID, bad, good, ("x", b"1")]), b"{}").subject == "s-1"
    assert read_headers(as_given([*_VALID, bad, good, ("x", b"1")]), b"{}").extra_headers == {
        "x": b"1"
    }
    with pytest.raises(EnvelopeError, match="not UTF-8"):
        read_headers(as_given([*_VALID, good, bad]), b"{}")


def test_read_headers_sets_every_field_of_the_envelope() -> None:
    env = wrap(ev.AlertRaised(alert=make_alert("c-1")), source="/s", correlation_id="k")
    read = read_headers(env.headers(), env.data)
    assert set(read.__dict__) == {f.name for f in dataclasses.fields(Envelope)}
    assert read == dataclasses.replace(read)  # as the dataclass itself builds it
    with pytest.raises(dataclasses.FrozenInstanceError):
        read.id = "other"  # type: ignore[misc]


# --------------------------------------------------------------------------- bodies


def _full_validation(event_type: str, data: bytes) -> ev.Event:
    """The contract's plain decode: the JSON, validated whole, with every screen on."""
    cls = ev.EVENTS_BY_TYPE[event_type]
    try:
        payload = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise EnvelopeError(f"body is not JSON: {exc}") from exc
    try:
        return cls.model_validate(payload)
    except ValidationError as exc:
        from recall_shared.envelope import _short_errors

        raise InvalidEvent(f"{event_type}: {_short_errors(exc)}") from exc


def _decoded(event_type: str, data: bytes) -> tuple[str, object]:
    """("event", the event) or (the error's kind, its message)."""
    env = wrap(ev.AlertRaised(alert=make_alert("c-0")), source="/s")
    try:
        return "event", parse(dataclasses.replace(env, type=event_type, data=data))
    except (EnvelopeError, InvalidEvent) as exc:
        return type(exc).__name__, str(exc)


def _expected(event_type: str, data: bytes) -> tuple[str, object]:
    try:
        return "event", _full_validation(event_type, data)
    except (EnvelopeError, InvalidEvent) as exc:
        return type(exc).__name__, str(exc)


# Changes to an alert's JSON, good and bad, in the shared part and around it.
_RECALL_EDITS: list[tuple[str, object]] = [
    ("title", "Acme kettle KX-1"),
    ("title", "Another kettle"),
    ("title", ""),  # min_length 1
    ("title", "x" * 501),
    ("title", "Kettle\u0000"),
    ("hazard", "Hot \\u0000 (written as text)"),
    ("severity", "apocalyptic"),
    ("units_affected", 2**40),
    ("units_affected", 5),
    ("images", ["https://a/x.jpg", "https://a/\u0000"]),
    ("texts", {"de": {"title": "Wasserkocher"}}),
    ("texts", {"d\u0000e": {"title": "Wasserkocher"}}),
    ("remedies", []),
    ("remedies", "none"),
]
_ALERT_EDITS: list[tuple[str, object]] = [
    ("customer_id", "c-1"),
    ("customer_id", "c\u00001"),
    ("customer_id", "c" * 101),
    ("alert_version", 2**31),
    ("tier", "possibly_affected"),
]


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["alert.raised.v1", "alert.updated.v1"]),
            st.one_of(st.none(), st.sampled_from(_RECALL_EDITS)),
            st.one_of(st.none(), st.sampled_from(_ALERT_EDITS)),
            st.booleans(),  # the recall content not a JSON object at all
        ),
        min_size=1,
        max_size=8,
    )
)
def test_alerts_decode_to_what_full_validation_gives_whatever_came_before(
    steps: list[tuple[str, tuple[str, object] | None, tuple[str, object] | None, bool]],
) -> None:
    # A sequence of alerts through one process: parts kept from earlier ones are reused.
    base = orjson.loads(
        orjson.dumps(ev.AlertRaised(alert=make_alert("c-1")).model_dump(mode="json"))
    )
    for event_type, recall_edit, alert_edit, not_an_object in steps:
        body = orjson.loads(orjson.dumps(base))
        if recall_edit is not None:
            body["alert"]["recall"][recall_edit[0]] = recall_edit[1]
        if alert_edit is not None:
            body["alert"][alert_edit[0]] = alert_edit[1]
        if not_an_object:
            body["alert"]["recall"] = ["not", "an", "object"]
        data = orjson.dumps(body)
        assert _decoded(event_type, data) == _expected(event_type, data), (recall_edit, alert_edit)


def test_the_recall_content_of_a_fan_out_is_validated_once_and_shared() -> None:
    shared_parts.forget_shared_parts()
    recall = make_alert("c-0", recall_id="rc-1").recall
    events = [
        ev.AlertRaised(
            alert=make_alert(f"c-{i}", recall_id="rc-1").model_copy(update={"recall": recall})
        )
        for i in range(3)
    ]
    decoded = [parse(wrap(e, source="/s")) for e in events]
    assert decoded == events
    assert decoded[0].alert.recall is decoded[1].alert.recall is decoded[2].alert.recall  # type: ignore[attr-defined]


def test_a_bad_recall_content_is_not_kept_and_names_its_full_path() -> None:
    shared_parts.forget_shared_parts()
    body = orjson.loads(
        orjson.dumps(ev.AlertRaised(alert=make_alert("c-1")).model_dump(mode="json"))
    )
    body["alert"]["recall"]["title"] = "x" * 501
    kind, message = _decoded("alert.raised.v1", orjson.dumps(body))
    assert kind == "InvalidEvent" and "alert.recall.title: String should have at most" in str(
        message
    )
    assert shared_parts._parts == {}


def test_the_parts_kept_are_bounded() -> None:
    shared_parts.forget_shared_parts()
    for i in range(shared_parts.MAX_PARTS + 5):
        alert = make_alert("c-1", title=f"Kettle {i}")
        parse(wrap(ev.AlertRaised(alert=alert), source="/s"))
    assert 0 < len(shared_parts._parts) <= shared_parts.MAX_PARTS
    long_text = "h" * ev.TEXT_MAX
    huge = make_alert("c-1").recall.model_copy(
        update=dict.fromkeys(
            ("hazard", "stop_using", "product_description", "incidents"), long_text
        )
    )
    assert len(orjson.dumps(huge.model_dump(mode="json"))) > shared_parts.MAX_PART_BYTES
    alert = make_alert("c-1").model_copy(update={"recall": huge})
    shared_parts.forget_shared_parts()
    assert parse(wrap(ev.AlertRaised(alert=alert), source="/s")) == ev.AlertRaised(alert=alert)
    assert shared_parts._parts == {}  # too long to keep


def _primed_body() -> tuple[dict, bytes]:
    """An alert's JSON (as a dict) whose recall content is the part decoded last, and that text."""
    shared_parts.forget_shared_parts()
    event = ev.AlertRaised(alert=make_alert("c-1"))
    parse(wrap(event, source="/s"))
    assert shared_parts._last is not None
    return orjson.loads(orjson.dumps(event.model_dump(mode="json"))), shared_parts._last[1]


def test_the_last_parts_text_is_swapped_not_decoded_again() -> None:
    body, text = _primed_body()
    data = orjson.dumps(body)
    assert text in data
    shared_parts._parts.clear()  # what the swap gives must not come from the kept parts
    decoded = parse(
        dataclasses.replace(wrap(ev.AlertRaised(alert=make_alert("c-0")), source="/s"), data=data)
    )
    assert decoded == _full_validation("alert.raised.v1", data)
    assert decoded.alert.recall is shared_parts._last[3]  # type: ignore[attr-defined, index]
    assert shared_parts._parts == {}  # nothing decoded, validated or kept anew


@pytest.mark.parametrize(
    "variant",
    [
        "recall null, its text in another field",
        "its text inside a string",
        "its text twice, the recall's the second",
        "recall given twice, the last one other",
        "its text cut short",
        "a NUL escape elsewhere",
        "not JSON after it",
    ],
)
def test_the_swap_gives_what_full_validation_gives(variant: str) -> None:
    body, text = _primed_body()
    recall = text.decode()
    alert = body["alert"]
    if variant == "recall null, its text in another field":
        alert["recall"] = None
        data = orjson.dumps(body).replace(
            b'"business_account_admin_id":null', b'"business_account_admin_id":' + text
        )
    elif variant == "its text inside a string":
        alert["recall"] = None
        alert["lines"][0]["title"] = recall
        data = orjson.dumps(body)
    elif variant == "its text twice, the recall's the second":
        data = orjson.dumps(body).replace(b'"alert":{', b'"extra":' + text + b',"alert":{')
    elif variant == "recall given twice, the last one other":
        data = orjson.dumps(body).replace(
            b'"recall":' + text, b'"recall":' + text + b',"recall":{}'
        )
    elif variant == "its text cut short":
        data = orjson.dumps(body).replace(text, text[:-2] + b"}")
    elif variant == "a NUL escape elsewhere":
        alert["lines"][0]["title"] = "Kettle\u0000"  # written as a \u0000 escape
        data = orjson.dumps(body)
        assert b"\\u0000" in data
    else:
        data = orjson.dumps(body)[:-1] + b",]"
    assert _decoded("alert.raised.v1", data) == _expected("alert.raised.v1", data), variant


# --------------------------------------------------------------------------- a state's JSON


def test_an_alert_states_json_is_its_dump_with_the_shared_recall_dumped_once() -> None:
    shared_parts.forget_shared_parts()
    one, other = make_alert("c-1", title="Kettle A"), make_alert("c-2", title="Kettle B")
    sharing = make_alert("c-3").model_copy(update={"recall": one.recall})
    for state in (one, other, sharing, one):
        assert orjson.loads(shared_parts.alert_state_json(state)) == orjson.loads(
            state.model_dump_json()
        )
    assert len(shared_parts._RECALL_JSON) == 2  # one dump per recall content instance
