"""The recall lifecycle, free of I/O: draft -> published -> (amended)* -> closed."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
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


# ------------------------------------------------------------------ seller notices (issue 16)
# GS1 Recall's cycle: notified -> acknowledged -> removal_confirmed -> closed. A repeat of the step
# a notice has taken is a repeat (the same answer), not a conflict; a removal confirmation implies
# the acknowledgement.

NoticeStatus = Literal["notified", "acknowledged", "removal_confirmed", "closed"]
NoticeAction = Literal["acknowledge", "confirm_removal", "close"]
_NOTICE_ORDER: tuple[NoticeStatus, ...] = (
    "notified",
    "acknowledged",
    "removal_confirmed",
    "closed",
)
_NOTICE_STEP: dict[NoticeAction, NoticeStatus] = {
    "acknowledge": "acknowledged",
    "confirm_removal": "removal_confirmed",
    "close": "closed",
}
# The least a notice must have reached before the action (a closeout needs the removal).
_NOTICE_NEEDS: dict[NoticeAction, NoticeStatus] = {
    "acknowledge": "notified",
    "confirm_removal": "notified",
    "close": "removal_confirmed",
}


def notice_step(status: str, action: NoticeAction) -> tuple[NoticeStatus, bool]:
    """The status after ``action`` and whether it changed anything (False: a repeat, or a step the
    notice is already past). :class:`IllegalTransition` when the action comes too early."""
    rank = _NOTICE_ORDER.index(status)
    if rank >= _NOTICE_ORDER.index(_NOTICE_STEP[action]):
        return _NOTICE_ORDER[rank], False
    if rank < _NOTICE_ORDER.index(_NOTICE_NEEDS[action]):
        raise IllegalTransition(status, action)
    return _NOTICE_STEP[action], True


def notice_overdue(status: str, ack_due_at: datetime, now: datetime) -> bool:
    """Not acknowledged (nor further) by the time it was due."""
    return status == "notified" and ack_due_at <= now


def webhook_signature(secret: str, timestamp: int, body: bytes) -> str:
    """The ``Recall-Signature`` header, as Stripe signs: HMAC-SHA256 over ``"{t}.{body}"``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify_webhook_signature(
    secret: str, header: str, body: bytes, now: float, tolerance_s: float = 300
) -> bool:
    """What a receiver checks: a ``v1`` signature of the body under ``secret``, with a timestamp
    within ``tolerance_s`` of ``now`` (a replayed old delivery fails)."""
    parts = [p.partition("=") for p in header.split(",")]
    stamps = [v for k, _, v in parts if k == "t"]
    if len(stamps) != 1 or not stamps[0].isdigit():
        return False
    timestamp = int(stamps[0])
    if abs(now - timestamp) > tolerance_s:
        return False
    expected = webhook_signature(secret, timestamp, body).rpartition("v1=")[2]
    return any(k == "v1" and hmac.compare_digest(v, expected) for k, _, v in parts)


def retry_delay_s(attempt: int, initial_s: float, cap_s: float, jitter: float) -> float:
    """The wait after the ``attempt``-th failed try: doubling from ``initial_s``, capped at
    ``cap_s``, its upper half jittered (``jitter`` in [0, 1)), so a receiver back from an outage is
    not hit by every sender at once."""
    ceiling = min(cap_s, initial_s * 2 ** max(attempt - 1, 0))
    return ceiling / 2 + ceiling / 2 * jitter


def delivered(status_code: int) -> bool:
    """A 2xx is delivered; anything else (and no answer) is tried again."""
    return 200 <= status_code < 300


# ------------------------------------------------------------ Letters of Compliance (issue 16)

LetterStatus = Literal["submitted", "accepted", "rejected"]
LetterDecision = Literal["accept", "reject"]
_LETTER_OUTCOME: dict[LetterDecision, LetterStatus] = {"accept": "accepted", "reject": "rejected"}


def letter_decision(status: str, decision: LetterDecision) -> tuple[LetterStatus, bool]:
    """The letter's status after an operator's decision, and whether it changed (False: the same
    decision again). The other decision on a decided letter is :class:`IllegalTransition`."""
    outcome = _LETTER_OUTCOME[decision]
    if status == outcome:
        return outcome, False
    if status != "submitted":
        raise IllegalTransition(status, decision)
    return outcome, True
