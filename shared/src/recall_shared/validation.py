"""What storage and encoders cannot hold, refused in one place: for HTTP input and for events alike.

PostgreSQL refuses NUL in text (and jsonb), UTF-8 encoders refuse lone surrogates, orjson refuses
integers beyond 64 bits. A value carrying one of them is bad input, never an infrastructure failure,
so it is refused where it enters (422 naming the field; a dead letter ``invalid`` on Kafka), before
it can reach a database, an encoder or another service.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Annotated, Any

from pydantic import AfterValidator

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

_UNSAFE_CHAR = re.compile("[\x00\ud800-\udfff]")
_BIDI_CONTROL = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")


def unsafe_text_reason(value: str) -> str | None:
    """Why this string cannot be stored, or None."""
    # Called on every string of every event decoded: C-speed tests first, the regex only for
    # non-ASCII.
    if "\x00" in value:
        return "must not contain the NUL character (U+0000)"
    if value.isascii() or _UNSAFE_CHAR.search(value) is None:
        return None
    return "must not contain a lone surrogate (U+D800..U+DFFF)"


def find_unsafe(
    value: Any, path: tuple[str | int, ...] = ()
) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Every (path, reason) in a decoded JSON value (dicts, lists, strings, numbers) that storage
    refuses: unsafe text in strings and keys, and integers outside 64 bits."""
    if isinstance(value, str):
        reason = unsafe_text_reason(value)
        if reason:
            yield path, reason
    elif isinstance(value, bool):
        return
    elif isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            yield path, "integer out of range (64-bit)"
    elif isinstance(value, dict):
        for k, v in value.items():
            if isinstance(k, str) and (reason := unsafe_text_reason(k)):
                yield (*path, k), f"key {reason}"
            yield from find_unsafe(v, (*path, k))
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            yield from find_unsafe(v, (*path, i))


def _check_text(value: str) -> str:
    reason = unsafe_text_reason(value)
    if reason:
        raise ValueError(reason)
    return value


SafeStr = Annotated[str, AfterValidator(_check_text)]
"""A string PostgreSQL and every encoder accept (no NUL, no lone surrogate)."""


def strip_bidi_controls(value: str) -> str:
    """Remove bidirectional control characters (a right-to-left override can disguise a subject
    line)."""
    return _BIDI_CONTROL.sub("", value)
