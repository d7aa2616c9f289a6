"""The recall lifecycle, free of I/O: draft -> published -> (amended)* -> closed."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Collection
from datetime import datetime
from typing import Literal, NamedTuple

import orjson

Status = Literal["draft", "published", "closed"]
Action = Literal["publish", "amend", "close", "edit"]

_ALLOWED: dict[tuple[str, Action], Status] = {
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
        return _ALLOWED[(status, action)]
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


NoticeChange = Literal["none", "join", "update"]


def notice_change(
    listed: Collection[str], lifted: Collection[str], product_id: str, told: bool
) -> NoticeChange:
    """What a stop-sale of ``product_id`` declared to a seller who has a notice of the recall does
    to it. A listing the notice names and still stops changes nothing the seller must do (an
    amendment that only re-declares it: another tier, other unknown attributes). A listing it does
    not name, or one a lift had made sellable again, is more stock to take off sale: it joins the
    notice while nothing of it has gone out yet (the listings of one publication), and once the
    seller has been told, the seller is told again (an ``update``)."""
    if product_id in listed and product_id not in lifted:
        return "none"
    return "update" if told else "join"


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


def webhook_address_allowed(address: str, allow_private: bool) -> bool:
    """Whether a webhook may be sent to this IP address: public ones only, unless private networks
    are allowed (a seller's URL must not make the service call its own network: loopback, private,
    link-local, reserved)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    return allow_private or ip.is_global


def delivered(status_code: int) -> bool:
    """A 2xx is delivered; anything else (and no answer) is tried again."""
    return 200 <= status_code < 300


# ------------------------------------------------------------ Letters of Compliance (issue 16)

LetterStatus = Literal["submitted", "accepted", "rejected", "withdrawn"]
LetterDecision = Literal["accept", "reject", "withdraw"]
_LETTER_OUTCOME: dict[LetterDecision, LetterStatus] = {
    "accept": "accepted",
    "reject": "rejected",
    "withdraw": "withdrawn",
}
# What a letter must be for the decision: a withdrawal takes back an acceptance.
_LETTER_FROM: dict[LetterDecision, LetterStatus] = {
    "accept": "submitted",
    "reject": "submitted",
    "withdraw": "accepted",
}


def letter_decision(status: str, decision: LetterDecision) -> tuple[LetterStatus, bool]:
    """The letter's status after an operator's decision, and whether it changed (False: the same
    decision again). Any other decision on a decided letter is :class:`IllegalTransition` (a
    withdrawn letter stays withdrawn: the seller files a new one)."""
    outcome = _LETTER_OUTCOME[decision]
    if status == outcome:
        return outcome, False
    if status != _LETTER_FROM[decision]:
        raise IllegalTransition(status, decision)
    return outcome, True


# ------------------------------------------------------------------ catalog screening (issue 16)
# A new draft (or an imported regulator record) against the catalog: which listings may be the
# recalled product, and how sure that is. An operator confirms or dismisses each candidate.

GTIN_MATCH = 0.95  # a GTIN names one trade item: as good as it gets short of the product id
GTIN_AND_MODEL = 0.99  # a GTIN and the model with its brand agree
MODEL_WITH_BRAND = 0.85
MODEL_NO_BRAND = 0.6  # one side gives no brand: the same model number may be another maker's
MODEL_OTHER_BRAND = 0.25  # most likely another maker's product with the same model number


class ScreenedRecall(NamedTuple):
    """What a draft names: the identifiers of its rules (GTIN-14s, model keys) and its brand."""

    product_ids: frozenset[str]
    gtins: frozenset[str]
    model_keys: frozenset[str]
    brand: str


class ScreenedListing(NamedTuple):
    product_id: str
    brand: str
    gtins: tuple[str, ...]
    model_keys: tuple[str, ...]


class Candidate(NamedTuple):
    product_id: str
    confidence: float
    reasons: tuple[str, ...]


def brand_key(brand: str) -> str:
    """Brands compared without case, spaces or punctuation ("Acme Inc." is "acmeinc")."""
    return "".join(ch for ch in brand.casefold() if ch.isalnum())


def screen_listing(recall: ScreenedRecall, listing: ScreenedListing) -> Candidate | None:
    """How likely the listing is the recalled product, or None when nothing ties them. A listing
    the draft already names by product id is in its scope, not a candidate."""
    if listing.product_id in recall.product_ids:
        return None
    reasons: list[str] = []
    gtins = sorted(recall.gtins.intersection(listing.gtins))
    reasons += [f"GTIN {g}" for g in gtins]
    model_score = 0.0
    ours, theirs = brand_key(recall.brand), brand_key(listing.brand)
    for model in sorted(recall.model_keys.intersection(listing.model_keys)):
        if ours and theirs and ours == theirs:
            score, why = MODEL_WITH_BRAND, f"model {model} of brand {listing.brand}"
        elif ours and theirs:
            why = f"model {model}, but of brand {listing.brand}, not {recall.brand}"
            score = MODEL_OTHER_BRAND
        else:
            score, why = MODEL_NO_BRAND, f"model {model} (no brand to compare)"
        model_score = max(model_score, score)
        reasons.append(why)
    if not reasons:
        return None
    if gtins:
        confidence = GTIN_AND_MODEL if model_score >= MODEL_WITH_BRAND else GTIN_MATCH
    else:
        confidence = model_score
    return Candidate(listing.product_id, confidence, tuple(reasons))


def confidence_level(confidence: float) -> Literal["high", "medium", "low"]:
    return "high" if confidence >= 0.8 else "medium" if confidence >= 0.5 else "low"
