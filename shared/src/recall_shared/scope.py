"""How lot and serial codes compare, free of I/O: the collations a recall's scope may state.

Real scopes: "lots 00112 through 10412" (zero-padded numbers: ``numeric``), serials "FFP 49 1203
0001" to "FFP 49 1237 00974" (segments of uneven width: ``natural``, which compares letter runs as
text and digit runs as numbers), or codes compared as written (``exact``).

Codes are normalised before they are compared: case, spaces, hyphens, dots, slashes and underscores
do not count, and under ``numeric`` neither do leading zeros. A code typed or scanned without the
spaces its range was written with (``AB12050007`` against ``AB 12 0500 01``...``AB 12 0600 99``) is
read in the range's own segmentation. A code that cannot be compared (letters under ``numeric``,
nothing left after normalising, too few digits to fill the range's segments) gets the verdict
``unknown``: the line is possibly affected, never silently out of scope.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import Any, Literal, Protocol

Collation = Literal["numeric", "natural", "exact"]
COLLATIONS: tuple[str, ...] = ("numeric", "natural", "exact")

Verdict = Literal["in", "out", "unknown"]
"""Whether a code is within a rule: ``unknown`` when it cannot be compared."""

_TOKENS = re.compile(r"\d+|[A-Z]+")
_SEPARATORS = re.compile(r"[\s\-–_./]+")

Token = tuple[int, int | str]
SortKey = tuple[Token, ...]


def normalise_code(code: str) -> str:
    return _SEPARATORS.sub("", code.strip().upper())


def _token(text: str) -> Token:
    return (0, int(text)) if text.isdecimal() else (1, text)


def natural_key(code: str) -> SortKey:
    """'FFP 49 1203 0001' -> (('FFP'), 49, 1203, 1): digit runs compare by value, whatever their
    width."""
    return tuple(_token(t) for t in _TOKENS.findall(code.upper()))


CodeKey = int | str | SortKey
"""A code's comparable form in one collation: its number (numeric), its key (natural), its text
(exact)."""


def collation_key(code: str, collation: Collation) -> CodeKey | None:
    """The comparable form of a code, or None when the code cannot be read in that collation."""
    if collation == "numeric":
        digits = normalise_code(code)
        # isdecimal, not isdigit: "³" is a digit to Python but no number for int().
        return int(digits) if digits.isdecimal() else None
    if collation == "natural":
        key = natural_key(code)
        return key or None
    return normalise_code(code) or None


class _Ordered(Protocol):
    def __lt__(self, other: Any, /) -> bool: ...
    def __gt__(self, other: Any, /) -> bool: ...


def _sign(a: _Ordered, b: _Ordered) -> int:
    return (a > b) - (a < b)


def key_order(a: CodeKey, b: CodeKey) -> int:
    """-1, 0 or 1 as key ``a`` sorts before, with or after key ``b`` (two keys of one collation,
    from :func:`collation_key`)."""
    return _sign(a, b)


def _runs(tokens: list[str]) -> list[list[str]]:
    """Consecutive tokens of one kind (digits, letters): ['AB', '12', '0500'] -> [['AB'], ['12',
    '0500']]."""
    runs: list[list[str]] = []
    for t in tokens:
        if runs and runs[-1][-1].isdecimal() == t.isdecimal():
            runs[-1].append(t)
        else:
            runs.append([t])
    return runs


def _aligned(code: list[str], bound: list[str]) -> tuple[list[Token], bool]:
    """The code's tokens cut where the bound's are: each run of digits (or letters) of the code,
    written without separators, is split at the widths of the bound's segments, the last segment
    of a run taking the rest. False with the tokens read so far when the code runs out or its runs
    differ in kind from the bound's."""
    pieces = ["".join(r) for r in _runs(code)]
    out: list[Token] = []
    for i, run in enumerate(_runs(bound)):
        if i >= len(pieces) or pieces[i][0].isdecimal() != run[0][0].isdecimal():
            return out, False
        rest = pieces[i]
        for segment in run[:-1]:
            width = len(segment)
            if len(rest) < width:
                return out, False
            out.append(_token(rest[:width]))
            rest = rest[width:]
            if not rest:
                return out, False
        out.append(_token(rest))
    out.extend(_token(p) for p in pieces[len(_runs(bound)) :])
    return out, True


Parsed = tuple[list[str], SortKey, tuple[bool, ...]]


def _parse(code: str) -> Parsed:
    """A code's letter and digit runs, its natural key, and which runs are digits."""
    tokens = _TOKENS.findall(code.upper())
    return tokens, tuple(_token(t) for t in tokens), tuple(t.isdecimal() for t in tokens)


_bound = functools.lru_cache(maxsize=4096)(_parse)
"""Range bounds repeat for every line a recall reaches: parsed once."""


def _natural_compare(mine: Parsed, bound: str) -> int | None:
    tokens, key, kinds = mine
    theirs, their_key, their_kinds = _bound(bound)
    if not tokens or not theirs:
        return None
    if kinds == their_kinds:
        return _sign(key, their_key)  # written alike: as written
    aligned, complete = _aligned(tokens, theirs)
    for a, b in zip(aligned, their_key, strict=False):
        if a != b:
            return _sign(a, b)  # decided before the code's reading ran out
    return _sign(len(aligned), len(theirs)) if complete else None


_bound_key = functools.lru_cache(maxsize=4096)(collation_key)


def compare(code: str, bound: str, collation: Collation) -> int | None:
    """-1, 0 or 1 as ``code`` sorts before, with or after ``bound``; None when they cannot be
    compared in ``collation``."""
    if collation == "natural":
        return _natural_compare(_parse(code), bound)
    mine, theirs = collation_key(code, collation), collation_key(bound, collation)
    if mine is None or theirs is None:
        return None
    return _sign(mine, theirs)


def range_verdict(code: str, first: str, last: str, collation: Collation) -> Verdict:
    """Whether ``code`` lies in the inclusive range ``first``...``last``. Known to be outside on
    either side decides, even when the other side cannot be compared."""
    if collation == "natural":
        mine = _parse(code)
        low, high = _natural_compare(mine, first), _natural_compare(mine, last)
    else:
        key = collation_key(code, collation)
        lo, hi = _bound_key(first, collation), _bound_key(last, collation)
        low = None if key is None or lo is None else _sign(key, lo)
        high = None if key is None or hi is None else _sign(key, hi)
    if (low is not None and low < 0) or (high is not None and high > 0):
        return "out"
    if low is None or high is None:
        return "unknown"
    return "in"


def in_range(code: str, first: str, last: str, collation: Collation) -> bool:
    return range_verdict(code, first, last, collation) == "in"


def value_verdict(code: str, value: str, collation: Collation) -> Verdict:
    """Whether ``code`` is the code ``value``: normalised text, and the same number under
    ``numeric`` (leading zeros do not count there)."""
    if collation == "numeric":
        same = compare(code, value, "numeric")
        if same is not None:
            return "in" if same == 0 else "out"
    mine = normalise_code(code)
    if not mine:
        return "unknown"
    if mine == normalise_code(value):
        return "in"
    # Under numeric a code that is no number cannot be told apart from the number it stands for.
    return "unknown" if collation == "numeric" and not mine.isdecimal() else "out"


def prefix_verdict(code: str, prefix: str) -> Verdict:
    """Whether ``code`` begins with ``prefix``, both normalised."""
    mine = normalise_code(code)
    if not mine:
        return "unknown"
    return "in" if mine.startswith(normalise_code(prefix)) else "out"


def combine(verdicts: Iterable[Verdict]) -> Verdict:
    """Alternatives: any ``in`` wins (the rest is not evaluated); otherwise any ``unknown`` leaves
    it open."""
    open_ = False
    for verdict in verdicts:
        if verdict == "in":
            return "in"
        open_ = open_ or verdict == "unknown"
    return "unknown" if open_ else "out"
