"""The event contracts refuse what storage cannot hold, when a record is decoded and when a producer
builds or emits an event: NUL, lone surrogates, integers beyond their column, over-long strings."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal

import orjson
import pytest
from pydantic import ValidationError

from recall_shared import events as ev
from recall_shared.envelope import (
    EnvelopeError,
    InvalidEvent,
    check_emittable,
    parse,
    serialize,
    wrap,
)
from recall_shared.validation import INT64_MAX, INT64_MIN

NOW = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)


def _content(**update: object) -> ev.RecallContent:
    values: dict[str, object] = {
        "title": "Acme kettle KX-1",
        "hazard": "The base can overheat.",
        "severity": "high",
        "stop_using": "Unplug it.",
        "remedies": [ev.Remedy(type="refund_with_return")],
    }
    values.update(update)
    return ev.RecallContent.model_validate(values)


def _raised() -> ev.AlertRaised:
    line = ev.AffectedLine(
        order_id="o-1",
        line_id="l-1",
        product_id="p-1",
        seller_id="s-1",
        purchased_at=NOW,
        units=1,
        unit_price=Decimal("10.00"),
        currency="EUR",
    )
    state = ev.AlertState(
        alert_id="a-1",
        alert_version=1,
        customer_id="c-1",
        recall_id="r-1",
        recall_version=1,
        seller_id="s-1",
        tier="confirmed",
        lines=[line],
        recall=_content(),
    )
    return ev.AlertRaised(alert=state)


def _declared(reason: str = "") -> dict[str, object]:
    return {
        "alert_id": "a-1",
        "customer_id": "c-1",
        "recall_id": "r-1",
        "declared_at": NOW.isoformat(),
        "reason": reason,
    }


def _parse_body(event_type: str, body: object) -> ev.Event:
    env = wrap(_raised(), source="/tests")
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return parse(type(env)(**{**env.__dict__, "type": event_type, "data": raw}))


def _raised_body() -> dict:
    return orjson.loads(serialize(_raised()))


# --------------------------------------------------------------------------- decoding


@pytest.mark.parametrize(
    ("path", "value", "reason"),
    [
        (
            ("alert", "recall", "title"),
            "Kettle\u0000",
            "alert.recall: Value error, title: must not",
        ),
        (("alert", "customer_id"), "c\u00001", "alert: Value error, customer_id: must not"),
        (("alert", "lines", 0, "lot"), "L\u00007", "alert.lines.0: Value error, lot: must not"),
        (("alert", "recall", "images"), ["https://a/x.jpg", "https://a/\u0000"], "images.1: must"),
    ],
)
def test_nul_anywhere_in_a_decoded_event_makes_it_invalid(
    path: tuple, value: object, reason: str
) -> None:
    body = _raised_body()
    target = body
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    with pytest.raises(InvalidEvent) as caught:
        _parse_body("alert.raised.v1", body)
    assert reason in str(caught.value)
    assert "NUL character" in str(caught.value)


def test_nul_in_a_dict_key_makes_the_event_invalid() -> None:
    body = _raised_body()
    body["alert"]["recall"]["texts"] = {"d\u0000e": {"title": "Wasserkocher"}}
    with pytest.raises(InvalidEvent, match=r"texts\.d\x00e: key must not contain the NUL"):
        _parse_body("alert.raised.v1", body)


def test_a_lone_surrogate_in_the_json_is_refused_at_decode() -> None:
    # orjson refuses a lone surrogate escape: the runner dead-letters the record as invalid at once.
    raw = orjson.dumps(_declared("placeholder")).replace(b"placeholder", b"a\\ud800b")
    with pytest.raises(EnvelopeError, match="surrogate"):
        _parse_body("remedy.not_affected_declared.v1", raw)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (2**63, "less than or equal to 2147483647"),  # orjson reads it as an int
        (2**64 - 1, "less than or equal to 2147483647"),
        (10**30, "exceeded maximum size"),  # orjson reads it as a float
    ],
)
def test_integers_beyond_64_bits_make_the_event_invalid(value: int, message: str) -> None:
    body = _raised_body()
    body["alert"]["recall"]["units_affected"] = 12345
    raw = orjson.dumps(body).replace(b"12345", str(value).encode())
    with pytest.raises(InvalidEvent, match=re.escape(message)):
        _parse_body("alert.raised.v1", raw)


def test_versions_and_quantities_fit_a_postgresql_integer() -> None:
    body = _raised_body()
    body["alert"]["alert_version"] = 2**31
    with pytest.raises(
        InvalidEvent, match=r"alert\.alert_version: Input should be less than or equal"
    ):
        _parse_body("alert.raised.v1", body)
    body = _raised_body()
    body["alert"]["lines"][0]["units"] = 2**31
    with pytest.raises(InvalidEvent, match=r"alert\.lines\.0\.units"):
        _parse_body("alert.raised.v1", body)
    body = _raised_body()
    body["alert"]["alert_version"] = 2**31 - 1
    assert isinstance(_parse_body("alert.raised.v1", body), ev.AlertRaised)


@pytest.mark.parametrize(
    ("where", "length", "limit"),
    [
        (("alert", "customer_id"), 101, 100),  # a platform id: VARCHAR(100)
        (("alert", "alert_id"), 37, 36),  # an id this system mints: a UUID
        (("alert", "lines", 0, "lot"), 201, 200),  # a code as printed: VARCHAR(200)
        (("alert", "lines", 0, "title"), 501, 500),
        (("alert", "recall", "hazard"), ev.TEXT_MAX + 1, ev.TEXT_MAX),
    ],
)
def test_strings_are_bounded_by_what_stores_them(where: tuple, length: int, limit: int) -> None:
    body = _raised_body()
    target = body
    for step in where[:-1]:
        target = target[step]
    target[where[-1]] = "x" * limit
    assert isinstance(_parse_body("alert.raised.v1", body), ev.AlertRaised)
    target[where[-1]] = "x" * length
    with pytest.raises(InvalidEvent, match=f"at most {limit} characters"):
        _parse_body("alert.raised.v1", body)


def test_a_string_without_a_bound_of_its_own_is_bounded_by_text_max() -> None:
    body = _raised_body()
    body["alert"]["recall"]["stop_using"] = "x" * ev.TEXT_MAX
    _parse_body("alert.raised.v1", body)
    body["alert"]["recall"]["texts"] = {"de": {"hazard": "x" * (ev.TEXT_MAX + 1)}}
    with pytest.raises(InvalidEvent, match=f"at most {ev.TEXT_MAX} characters"):
        _parse_body("alert.raised.v1", body)


def test_an_empty_identifier_is_invalid() -> None:
    with pytest.raises(InvalidEvent, match="customer_id: String should have at least 1 character"):
        _parse_body("remedy.not_affected_declared.v1", {**_declared(), "customer_id": ""})


def test_ordinary_text_passes_untouched() -> None:
    text = "Überhitzung — ☕ 🔥 \u202eRTL\u202c, line\nbreak\ttab"  # not storage's business
    event = _parse_body("remedy.not_affected_declared.v1", _declared(text))
    assert isinstance(event, ev.NotAffectedDeclared) and event.reason == text


# --------------------------------------------------------------------------- producing


def test_a_producer_cannot_build_an_event_with_nul() -> None:
    # customer-api builds this from POST /v1/me/alerts/{id}/not-affected {"reason": "a\u0000b"}
    with pytest.raises(ValidationError, match="reason: must not contain the NUL character"):
        ev.NotAffectedDeclared.model_validate(_declared("a\u0000b"))
    with pytest.raises(ValidationError, match=r"lone surrogate|valid string"):
        ev.NotAffectedDeclared.model_validate(_declared("a\ud800b"))
    with pytest.raises(ValidationError, match="title: must not contain the NUL character"):
        _content(title="Kettle\u0000")
    with pytest.raises(ValidationError, match="less than or equal to 2147483647"):
        _content(units_affected=10**30)


def test_emitting_an_event_built_without_validation_is_refused() -> None:
    bad = ev.NotAffectedDeclared.model_construct(
        alert_id="a-1", customer_id="c-1", recall_id="r-1", declared_at=NOW, reason="a\u0000b"
    )
    with pytest.raises(InvalidEvent, match="reason: must not contain the NUL character"):
        check_emittable(wrap(bad, source="/tests"), ev.NotAffectedDeclared)
    good = ev.NotAffectedDeclared.model_validate(_declared("fine"))
    check_emittable(wrap(good, source="/tests"), ev.NotAffectedDeclared)


def test_an_event_that_cannot_be_encoded_is_refused_as_invalid() -> None:
    surrogate = ev.NotAffectedDeclared.model_construct(
        alert_id="a-1", customer_id="c-1", recall_id="r-1", declared_at=NOW, reason="a\ud800"
    )
    with pytest.raises(InvalidEvent, match="cannot be encoded"):
        wrap(surrogate, source="/tests")
    raised = _raised()
    huge = raised.model_copy(
        update={
            "alert": raised.alert.model_copy(
                update={"recall": raised.alert.recall.model_copy(update={"units_affected": 10**30})}
            )
        }
    )
    with pytest.raises(InvalidEvent, match="cannot be encoded"):
        wrap(huge, source="/tests")


def test_over_long_text_copied_into_an_event_is_refused_on_emit() -> None:
    raised = _raised()
    long_id = raised.model_copy(
        update={"alert": raised.alert.model_copy(update={"customer_id": "c" * 101})}
    )
    with pytest.raises(InvalidEvent, match="at most 100 characters"):
        check_emittable(wrap(long_id, source="/tests"), ev.AlertRaised)


# --------------------------------------------------------------------------- the decode screen


def _unbounded_integers(schema: object, path: str = "") -> list[str]:
    if isinstance(schema, list):
        return [p for item in schema for p in _unbounded_integers(item, path)]
    if not isinstance(schema, dict):
        return []
    found = []
    if schema.get("type") == "integer" and not (
        schema.get("minimum", INT64_MIN - 1) >= INT64_MIN
        and schema.get("maximum", INT64_MAX + 1) <= INT64_MAX
    ):
        found.append(path)
    for key, value in schema.items():
        found += _unbounded_integers(value, f"{path}.{key}")
    return found


def test_every_integer_in_every_contract_is_bounded_within_64_bits() -> None:
    """envelope.parse skips the models' storage screen for JSON without a NUL escape: that is
    safe only while no integer field takes a value beyond 64 bits."""
    unbounded = [
        f"{cls.__name__}{p}"
        for cls in ev.ALL_EVENTS
        for p in _unbounded_integers(cls.model_json_schema())
    ]
    assert unbounded == []


def test_screened_decoding_gives_the_event_full_validation_gives() -> None:
    body = _raised_body()
    screened = _parse_body("alert.raised.v1", body)
    assert screened == ev.AlertRaised.model_validate(body)
    # The characters backslash-u0000 written as text: a false alarm for the screen, still valid.
    body["alert"]["recall"]["hazard"] = "Hot \\u0000"
    assert _parse_body("alert.raised.v1", body).alert.recall.hazard == "Hot \\u0000"
