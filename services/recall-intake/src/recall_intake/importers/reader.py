"""Reading a regulator file record by record: JSON lines, a JSON array, ``{"success": {"results":
[...]}}`` (USA.gov/GSA recalls API), ``{"seeds": [...]}`` (canon-event seeds) or ``{"results":
[...]}`` (openFDA API).

JSON lines are read one line at a time. A JSON document is parsed whole (the regulators' files are a
few megabytes; CPSC's live API answers with one unpaginated array anyway) and its records are then
yielded one by one. A line that is not JSON is yielded as a :class:`BadLine` so the import can count
it as failed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class UnreadableFile(Exception):
    """The file cannot be read at all (missing, not JSON, or no records where records were
    expected)."""


@dataclass(frozen=True)
class BadLine:
    line: int
    error: str


def _records_of(doc: Any) -> list[Any]:
    if isinstance(doc, list):
        return doc
    if isinstance(doc, dict):
        for path in (("success", "results"), ("results",), ("seeds",), ("records",), ("data",)):
            node: Any = doc
            for key in path:
                node = node.get(key) if isinstance(node, dict) else None
            if isinstance(node, list):
                return node
        return [doc]  # a single record
    raise UnreadableFile(f"expected a JSON array or object, found {type(doc).__name__}")


def _looks_like_json_lines(path: Path) -> bool:
    with path.open("rb") as fh:
        first = b""
        for raw in fh:
            if raw.strip():
                first = raw.strip()
                break
        if not first.startswith(b"{"):
            return False
        try:
            json.loads(first)
        except ValueError:
            return False  # a pretty-printed document: its first line is not a whole object
        return True


def open_records(path: str | Path) -> tuple[int, Iterator[Any]]:
    """(number of records, iterator over them). Raises UnreadableFile when nothing can be read."""
    p = Path(path)
    try:
        if not p.is_file():
            raise UnreadableFile(f"{p}: no such file")
        if _looks_like_json_lines(p):
            with p.open("rb") as fh:
                total = sum(1 for line in fh if line.strip())
            if total > 1:
                return total, _iter_lines(p)
        with p.open("rb") as fh:
            doc = json.load(fh)
    except OSError as exc:
        raise UnreadableFile(f"{p}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise UnreadableFile(f"{p}: not JSON or JSON lines ({exc})") from None
    records = _records_of(doc)
    return len(records), iter(records)


def _iter_lines(p: Path) -> Iterator[Any]:
    with p.open("rb") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except ValueError as exc:
                # JSONDecodeError carries the parser's message; other ValueErrors (an integer
                # over the digit limit) their own.
                why = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
                yield BadLine(n, f"line {n} is not JSON: {why}")
