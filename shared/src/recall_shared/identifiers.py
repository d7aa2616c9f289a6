"""Product identifiers as the contracts carry them: GTIN-14 and normalised model numbers.

Recalls quote UPCs and EANs in many shapes: "0-11110-91128-5", "4 006381 333931", with the check
digit dropped, or mistyped. Everything is normalised to GTIN-14 (zero-padded, check digit verified);
a dropped check digit is repaired and flagged, a wrong one is refused with a message that says
which.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

_SEPARATORS = re.compile(r"[\s\-–.·/]+")
_MODEL_NOISE = re.compile(r"[\s\-–_./]+")

GtinStatus = Literal["valid", "check_digit_added", "invalid"]


def check_digit(body: str) -> int:
    """GS1 check digit of the digits before it (weights 3, 1, 3 ... from the right)."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return (10 - total % 10) % 10


@dataclass(frozen=True)
class GtinResult:
    original: str
    gtin14: str | None
    status: GtinStatus
    message: str = ""


def normalise_gtin(raw: str) -> GtinResult:
    """GTIN-8, UPC-A (12), EAN-13 or GTIN-14 in any common spelling -> GTIN-14.

    An 11-digit UPC-A or 7-digit EAN-8 is taken as missing its check digit, which is added and
    flagged. A 12- or 13-digit code whose check digit does not verify is refused (a typo cannot be
    repaired safely); the message gives the check digit it should have had.
    """
    digits = _SEPARATORS.sub("", raw.strip())
    # ASCII digits only: str.isdigit() also takes "³" (which int() refuses) and other scripts'
    # digits (which no GTIN is written in, and would never compare equal).
    if not (digits.isascii() and digits.isdigit()):
        return GtinResult(
            raw,
            None,
            "invalid",
            f"{raw!r} is not a GTIN: only digits, spaces and hyphens are allowed",
        )
    n = len(digits)
    if n in (8, 12, 13, 14):
        expected = check_digit(digits[:-1])
        if int(digits[-1]) == expected:
            return GtinResult(raw, digits.zfill(14), "valid")
        if n in (12, 13):
            # A 12-digit code may be an EAN-13 that lost its check digit: that reading verifies
            # trivially, so it is only offered as a hint, never applied.
            hint = (
                f"; if the check digit was dropped from an EAN-13, it is "
                f"{digits}{check_digit(digits)}"
                if n == 12
                else ""
            )
            return GtinResult(
                raw,
                None,
                "invalid",
                f"{raw!r}: check digit {digits[-1]} does not verify (expected {expected}){hint}",
            )
        return GtinResult(
            raw,
            None,
            "invalid",
            f"{raw!r}: check digit {digits[-1]} does not verify (expected {expected})",
        )
    if n in (7, 11):
        repaired = digits + str(check_digit(digits))
        return GtinResult(
            raw,
            repaired.zfill(14),
            "check_digit_added",
            f"{raw!r} has {n} digits: check digit {repaired[-1]} added "
            f"({'EAN-8' if n == 7 else 'UPC-A'})",
        )
    return GtinResult(
        raw, None, "invalid", f"{raw!r}: {n} digits is not a GTIN length (8, 12, 13 or 14)"
    )


def model_key(model_number: str | None) -> str | None:
    """Model numbers compared without case, spaces, hyphens, dots or slashes: 'AB-12 c' ==
    'ab12C'."""
    if not model_number:
        return None
    key = _MODEL_NOISE.sub("", model_number).upper()
    return key or None
