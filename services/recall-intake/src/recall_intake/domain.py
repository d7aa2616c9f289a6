"""The recall lifecycle, free of I/O: draft -> published -> (amended)* -> closed."""

from __future__ import annotations

import hashlib
from typing import Literal

import orjson

Status = Literal["draft", "published", "closed"]
Action = Literal["publish", "amend", "close", "edit"]

_ALLOWED: dict[tuple[str, str], str] = {
    ("draft", "publish"): "published",
    ("draft", "edit"): "draft",
    ("published", "amend"): "published",
    ("published", "close"): "closed",
}


class IllegalTransition(Exception):
    def __init__(self, status: str, action: str) -> None:
        super().__init__(f"cannot {action} a recall that is {status}")
        self.status = status
        self.action = action


def transition(status: str, action: Action) -> Status:
    try:
        return _ALLOWED[(status, action)]  # type: ignore[return-value]
    except KeyError:
        raise IllegalTransition(status, action) from None


def fingerprint(payload: object) -> str:
    """A stable hash of a request body, to tell an idempotent retry from a different request."""
    return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()
