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


# One severity scale for every regulator's classes. FDA Class I: reasonable probability of serious
# harm or death; Class II: temporary or reversible harm; Class III: unlikely to cause harm. EU
# Safety Gate risk levels map one to one. CPSC does not classify; its hazards with death or serious
# injury are high.
_SEVERITY: dict[tuple[str, str], str] = {
    ("FDA", "CLASS I"): "critical",
    ("FDA", "CLASS II"): "medium",
    ("FDA", "CLASS III"): "low",
    ("EU_SAFETY_GATE", "SERIOUS"): "critical",
    ("EU_SAFETY_GATE", "HIGH"): "high",
    ("EU_SAFETY_GATE", "MEDIUM"): "medium",
    ("EU_SAFETY_GATE", "LOW"): "low",
}
_SERIOUS_WORDS = (
    "death",
    "serious injur",
    "fatal",
    "fire",
    "burn",
    "electrocution",
    "suffocat",
    "chok",
    "strangulat",
)


def severity_for(agency: str, classification: str = "", hazard: str = "") -> str:
    """The project's severity for a regulator's classification, or from the hazard's words when
    none."""
    mapped = _SEVERITY.get((agency.upper(), " ".join(classification.upper().split())))
    if mapped:
        return mapped
    text = hazard.lower()
    return "high" if any(w in text for w in _SERIOUS_WORDS) else "medium"
