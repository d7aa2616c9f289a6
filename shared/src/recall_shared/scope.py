"""How lot and serial codes compare, free of I/O: the collations a recall's scope may state.

Real scopes: "lots 00112 through 10412" (zero-padded numbers: ``numeric``), serials "FFP 49 1203
0001" to "FFP 49 1237 00974" (segments of uneven width: ``natural``, which compares letter runs as
text and digit runs as numbers), or codes compared as written (``exact``). Codes are compared
without case and without spaces or hyphens.
"""

from __future__ import annotations

import re
from typing import Literal

Collation = Literal["numeric", "natural", "exact"]
COLLATIONS: tuple[str, ...] = ("numeric", "natural", "exact")

_TOKENS = re.compile(r"\d+|[A-Z]+")
_SEPARATORS = re.compile(r"[\s\-–_./]+")

SortKey = tuple[tuple[int, int | str], ...]


def normalise_code(code: str) -> str:
    return _SEPARATORS.sub("", code.strip().upper())


def natural_key(code: str) -> SortKey:
    """'FFP 49 1203 0001' -> (('FFP'), 49, 1203, 1): digit runs compare by value, whatever their
    width."""
    return tuple((0, int(t)) if t.isdigit() else (1, t) for t in _TOKENS.findall(code.upper()))


def collation_key(code: str, collation: Collation) -> int | str | SortKey | None:
    """The comparable form of a code, or None when the code cannot be read in that collation."""
    if collation == "numeric":
        digits = normalise_code(code)
        return int(digits) if digits.isdigit() else None
    if collation == "natural":
        key = natural_key(code)
        return key or None
    return normalise_code(code) or None


def in_range(code: str, first: str, last: str, collation: Collation) -> bool:
    k, lo, hi = (collation_key(c, collation) for c in (code, first, last))
    if k is None or lo is None or hi is None:
        return False
    try:
        return lo <= k <= hi  # type: ignore[operator]
    except TypeError:  # natural keys of different shapes ('AB' vs 12) do not compare: not in range
        return False
