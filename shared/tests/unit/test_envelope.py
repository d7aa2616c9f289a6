from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import orjson
import pytest

from recall_shared import envelope
from recall_shared import events as ev
from recall_shared.envelope import (
    EnvelopeError,
    InvalidEvent,
    UnknownEventType,
    parse,
    read_headers,
    wrap,
)


def _order() -> ev.OrderPlaced:
    return ev.OrderPlaced(
        order_id="o-1",
        customer_id="c-1",
        placed_at=datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
        lines=[
            ev.OrderLine(
                line_id="l-1",
                product_id="p-1",
                seller_id="s-1",
                quantity=2,
                unit_price=Decimal("12.50"),
                currency="EUR",
                lot="LOT-7",
            )
        ],
    )


def test_round_trip_through_headers_gives_back_the_event() -> None:
    event = _order()
    env = wrap(event, source="/recall-alerts/test", correlation_id="corr-1", causation_id="cause-1")
    read = read_headers(env.headers(), env.data)

    assert parse(read) == event
    assert (
        read.id == env.id
        and read.type == "order.placed.v1"
        and read.source == "/recall-alerts/test"
    )
    assert read.time == env.time
    assert read.subject == "c-1"  # the partition key by default
    assert read.correlation_id == "corr-1" and read.causation_id == "cause-1"
    assert read.extra_headers == {"content-type": b"application/json"}


def test_wrap_uses_given_event_id_and_fresh_ids_otherwise() -> None:
    event = _order()
    assert wrap(event, source="s", event_id="fixed").id == "fixed"
    assert wrap(event, source="s").id != wrap(event, source="s").id


def test_subject_override_travels() -> None:
    event = ev.AlertClosed(
        alert_id="al-9", customer_id="c-1", recall_id="r", closed_at=datetime.now(UTC)
    )
    env = wrap(event, source="s")
    assert read_headers(env.headers(), env.data).subject == "al-9"


def _headers_without(name: str) -> list[tuple[str, bytes]]:
    env = wrap(_order(), source="s")
    return [(k, v) for k, v in env.headers() if k != name]


@pytest.mark.parametrize("missing", ["ce_id", "ce_type", "ce_source", "ce_specversion"])
def test_missing_required_attribute_is_an_envelope_error(missing: str) -> None:
    with pytest.raises(EnvelopeError, match=missing):
        read_headers(_headers_without(missing), b"{}")


def test_no_headers_at_all_is_an_envelope_error() -> None:
    with pytest.raises(EnvelopeError):
        read_headers(None, b"garbage")


def test_bad_specversion_is_an_envelope_error() -> None:
    headers = [*_headers_without("ce_specversion"), ("ce_specversion", b"0.3")]
    with pytest.raises(EnvelopeError, match="specversion"):
        read_headers(headers, b"{}")


def test_bad_time_and_non_utf8_headers_are_envelope_errors() -> None:
    with pytest.raises(EnvelopeError, match="ce_time"):
        read_headers([*_headers_without("ce_time"), ("ce_time", b"yesterday")], b"{}")
    with pytest.raises(EnvelopeError, match="UTF-8"):
        read_headers([*_headers_without("ce_source"), ("ce_source", b"\xff\xfe")], b"{}")


def test_missing_body_is_an_envelope_error() -> None:
    env = wrap(_order(), source="s")
    with pytest.raises(EnvelopeError, match="no body"):
        read_headers(env.headers(), None)


def test_non_json_body_is_an_envelope_error() -> None:
    env = wrap(_order(), source="s")
    read = read_headers(env.headers(), b"\x00not json")
    with pytest.raises(EnvelopeError, match="not JSON"):
        parse(read)


def test_schema_violation_is_invalid_event() -> None:
    env = wrap(_order(), source="s")
    body = orjson.loads(env.data)
    body["lines"][0]["quantity"] = 0  # ge=1
    del body["customer_id"]
    with pytest.raises(InvalidEvent) as info:
        parse(read_headers(env.headers(), orjson.dumps(body)))
    assert "quantity" in str(info.value) and "customer_id" in str(info.value)
    assert isinstance(info.value, ValueError) and not isinstance(info.value, EnvelopeError)


def test_unknown_type_is_unknown_event_type() -> None:
    env = wrap(_order(), source="s")
    headers = [*_headers_without("ce_type"), ("ce_type", b"order.placed.v2")]
    with pytest.raises(UnknownEventType, match=r"order\.placed\.v2"):
        parse(read_headers(headers, env.data))


def test_parse_honours_the_known_types_it_is_given() -> None:
    env = wrap(_order(), source="s")
    with pytest.raises(UnknownEventType):
        parse(read_headers(env.headers(), env.data), known={})


def test_unknown_extra_fields_are_ignored() -> None:
    event = _order()
    env = wrap(event, source="s")
    body = orjson.loads(env.data)
    body["added_in_a_later_minor_version"] = {"anything": [1, 2]}
    body["lines"][0]["warehouse"] = "W1"
    assert parse(read_headers(env.headers(), orjson.dumps(body))) == event


def test_serialize_is_json_of_the_model() -> None:
    event = _order()
    assert orjson.loads(envelope.serialize(event))["lines"][0]["unit_price"] == "12.50"


def test_fan_out_headers_equal_the_envelopes_own() -> None:
    from datetime import UTC, datetime

    from recall_shared.envelope import Envelope, FanOutHeaders

    at = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    for correlation, causation in (("corr-1", "cause-1"), (None, None)):
        make = FanOutHeaders(
            type="alert.raised.v1",
            source="/s",
            time=at,
            correlation_id=correlation,
            causation_id=causation,
        )
        for event_id, subject in (("a:1:1:alert.raised.v1", "a"), ("b", "ß-subject")):
            expected = Envelope(
                id=event_id,
                type="alert.raised.v1",
                source="/s",
                time=at,
                subject=subject,
                data=b"{}",
                correlation_id=correlation,
                causation_id=causation,
            ).headers()
            assert make(event_id, subject) == expected
        assert make("x", "y") is not make("x", "y")  # a fresh list each time: the sender keeps it
