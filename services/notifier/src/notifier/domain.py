"""notifier's pure decisions: what a run of alert events does to the alerts the notifier knows, and
which notices it queues.

A run of ``alert.raised.v1`` / ``alert.updated.v1`` events is planned as if each were applied on
its own, in order: an event older than the version held is ignored; a stored event's state becomes
the alert's newest; a raised alert, or an update that moves the version on, queues a notice per
recipient; an update of the version held queues an "amendment" notice when the recall changed
materially (:func:`material_changes`), and nothing for a wording edit.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeAlias

from recall_shared import events as ev

AlertEvent: TypeAlias = ev.AlertRaised | ev.AlertUpdated


@dataclass(frozen=True, slots=True)
class NoticeDraft:
    """A notice to queue: one per (alert, kind, version, recipient)."""

    alert_id: str
    customer_id: str
    recipient_customer_id: str
    role: str  # purchaser | account_admin | gift_recipient
    kind: str  # initial | update | amendment
    alert_version: int
    number: int = 0  # the notice's reminder_no: an amendment's recall version (see below)

    @property
    def key(self) -> tuple[str, str, int, str, int]:
        return (
            self.alert_id,
            self.kind,
            self.alert_version,
            self.recipient_customer_id,
            self.number,
        )


@dataclass
class AlertPlan:
    """``stored``: the newest state per alert, to upsert (insertion order); ``notices``: to queue,
    first occurrence of each key only (a repeat would be a no-op on the unique key anyway)."""

    stored: dict[str, ev.AlertState] = field(default_factory=dict)
    notices: list[NoticeDraft] = field(default_factory=list)


def recipients(state: ev.AlertState) -> list[tuple[str, str]]:
    """(role, recipient customer) of an alert's notices: the purchaser (whose safety contact, when
    set, gets the mail), a business account's admin when that is someone else, and the recipients
    of gift lines the purchaser gave a contact for (:func:`gift_recipients`)."""
    out = [("purchaser", state.customer_id)]
    admin = state.business_account_admin_id
    if admin and admin != state.customer_id:
        out.append(("account_admin", admin))
    out += [("gift_recipient", rid) for rid in gift_recipients(state)]
    return out


GIFT_NAMESPACE = uuid.UUID("5d8e3b7a-1f2c-4e6d-9a0b-7c4f2e1d3b59")


def gift_recipients(state: ev.AlertState) -> dict[str, ev.GiftRecipient]:
    """The gift recipients of an alert's lines who can be told (an email, a phone or a postal
    address), by their recipient id: ``gift-`` and a uuid of the purchaser and the contact, so the
    same person is told once however many gifts they had, and keeps their id across alert
    versions (the address counts only for a recipient with neither email nor phone)."""
    out: dict[str, ev.GiftRecipient] = {}
    for line in state.lines:
        r = line.gift_recipient
        if line.is_gift and r is not None and (r.email or r.phone or r.postal_address):
            key = f"{state.customer_id}\x1f{(r.email or '').lower()}\x1f{r.phone or ''}"
            if not (r.email or r.phone) and r.postal_address is not None:
                key += f"\x1f{_address_key(r.postal_address)}"
            out.setdefault(f"gift-{uuid.uuid5(GIFT_NAMESPACE, key)}", r)
    return out


def _address_key(address: ev.PostalAddress) -> str:
    parts = [*address.lines, address.postal_code, address.city, address.region, address.country]
    return "\x1e".join(" ".join(p.casefold().split()) for p in parts)


def is_gift_recipient(role: str) -> bool:
    return role == "gift_recipient"


def reported_role(role: str) -> dict[str, Any]:
    """The recipient fields of a sent event: a gift recipient is told on the purchaser's behalf
    (the sent events' ``recipient_role`` has no value for them; ``gift_recipient`` says so)."""
    if is_gift_recipient(role):
        return {"recipient_role": "purchaser", "gift_recipient": True}
    return {"recipient_role": role}


def plan_alert_events(
    known_versions: Mapping[str, int],
    events: Iterable[AlertEvent],
    held_recalls: Mapping[str, ev.RecallContent] | None = None,
) -> AlertPlan:
    """Apply ``events`` in order to the versions held (``known_versions``: alert id -> version;
    ``held_recalls``: the recall content held, for the alerts whose version an update repeats)."""
    versions = dict(known_versions)
    recalls = dict(held_recalls or {})
    plan = AlertPlan()
    keys: set[tuple[str, str, int, str, int]] = set()
    for event in events:
        state = event.alert
        held = versions.get(state.alert_id)
        if held is not None and held > state.alert_version:
            continue  # older than what we hold
        versions[state.alert_id] = state.alert_version
        before = recalls.get(state.alert_id)
        recalls[state.alert_id] = state.recall
        plan.stored.pop(state.alert_id, None)  # re-inserted: the order is of the last store
        plan.stored[state.alert_id] = state
        number = 0
        if held is None:
            # Nothing was told yet, whatever the version: an update whose raise never arrived here
            # (a matcher pass that failed after announcing) is the customer's first notice.
            kind = "initial"
        elif isinstance(event, ev.AlertRaised):
            kind = "initial" if state.alert_version == 1 else "update"
        elif held < state.alert_version:
            kind = "update"  # the scope changed
        elif before is not None and material_changes(before, state.recall):
            # The recall was amended in a way that matters for safety: told again, once per
            # amendment (its recall version numbers the notice).
            kind, number = "amendment", state.recall_version
        else:
            continue  # an update of the version held: a wording edit, nothing to tell
        for role, recipient in recipients(state):
            draft = NoticeDraft(
                state.alert_id,
                state.customer_id,
                recipient,
                role,
                kind,
                state.alert_version,
                number,
            )
            if draft.key not in keys:
                keys.add(draft.key)
                plan.notices.append(draft)
    return plan


# --------------------------------------------------------------------------- material amendments
# Issue 14: an amendment that raises the hazard or the severity, changes what to stop doing, or adds
# or removes a remedy re-notifies everyone still affected; wording edits do not.

_SEVERITY_RANK = {"low": 0, "medium": 1, "high": 2, "critical": 3}
_WORDING = re.compile(r"[\W_]+")


def _words(text: str) -> str:
    """A text as its words: case, spacing and punctuation are wording, not meaning."""
    return _WORDING.sub(" ", text).strip().casefold()


def material_changes(before: ev.RecallContent, after: ev.RecallContent) -> list[str]:
    """Why the change from ``before`` to ``after`` must be told to those already alerted, in a
    fixed order; empty for a cosmetic edit (title, description, hazard or contact wording, a
    lowered severity, photos, translations).

    - ``severity_raised``: a higher severity (low < medium < high < critical);
    - ``hazard_raised``: a hazard type that was not there, or more incidents or injuries reported,
      or a safety alert become a recall;
    - ``stop_using_changed``: the stop-using instruction says other words;
    - ``remedy_added`` / ``remedy_removed``: the remedies offered changed."""
    reasons = []
    if _SEVERITY_RANK[after.severity] > _SEVERITY_RANK[before.severity]:
        reasons.append("severity_raised")
    more_reported = any(
        new is not None and new > (old or 0)
        for old, new in (
            (before.incidents_reported, after.incidents_reported),
            (before.injuries_reported, after.injuries_reported),
        )
    )
    new_hazard = bool(after.hazard_type) and _words(after.hazard_type) != _words(before.hazard_type)
    escalated = before.kind == "safety_alert" and after.kind == "recall"
    if new_hazard or more_reported or escalated:
        reasons.append("hazard_raised")
    if _words(after.stop_using) != _words(before.stop_using):
        reasons.append("stop_using_changed")
    remedies_before = {r.type for r in before.remedies}
    remedies_after = {r.type for r in after.remedies}
    if remedies_after - remedies_before:
        reasons.append("remedy_added")
    if remedies_before - remedies_after:
        reasons.append("remedy_removed")
    return reasons


def contract_kind(kind: str) -> str:
    """A notice's kind as notification.*.v1 states it: an amendment is an update by contract (the
    recall changed; here is what applies now), so consumers see no new kind."""
    return "update" if kind == "amendment" else kind


# --------------------------------------------------------------------------- sending decisions
# What the sender does with a claimed notice, and with the answer of a send: pure, so every rule
# is unit-tested (tests/unit/test_domain.py) and the sender only does the I/O.

Channel: TypeAlias = str  # email | sms | letter


@dataclass(frozen=True, slots=True)
class ClaimedNotice:
    """What the decisions need to know of a claimed notice, its alert and its recipient."""

    kind: str
    recipient_role: str
    alert_status: str | None
    responded: bool
    in_doubt: bool  # the previous attempt was interrupted after 'sending' was recorded
    email: str | None
    safety_email: str | None


@dataclass(frozen=True, slots=True)
class Send:
    """Send it on ``channel`` to ``to``; ``role`` is the recipient role the events report (a
    purchaser's safety contact is reported as such)."""

    channel: Channel
    to: str
    role: str


@dataclass(frozen=True, slots=True)
class Hold:
    """Do not send: ``status`` is the notice's next state (cancelled | in_doubt |
    waiting_contact), ``reason`` its last_error; ``final`` ones get a notification.failed.v1."""

    status: str
    reason: str = ""
    final: bool = False


def decide_send(notice: ClaimedNotice, *, at_most_once: bool) -> Send | Hold:
    """Whether a claimed notice still goes out, and where. Checked before an in-doubt notice too,
    so a withdrawn alert is never re-sent."""
    if notice.kind != "withdrawal" and notice.alert_status == "withdrawn":
        return Hold("cancelled", "alert withdrawn")
    if notice.kind == "reminder" and (notice.alert_status != "open" or notice.responded):
        return Hold(
            "cancelled",
            f"reminders stopped: alert {notice.alert_status}"
            + (", customer responded" if notice.responded else ""),
        )
    if notice.in_doubt and at_most_once:
        return Hold(
            "in_doubt",
            "delivery in doubt: the sender stopped after the SMTP transaction began; "
            "not re-sent (delivery_guarantee=at_most_once)",
            final=True,
        )
    to = notice.safety_email or notice.email
    if not to:
        return Hold("waiting_contact")
    role = (
        "safety_contact"
        if notice.safety_email and notice.recipient_role == "purchaser"
        else notice.recipient_role
    )
    return Send("email", to, role)


def after_send_error(
    *, permanent: bool, in_doubt: bool, at_most_once: bool, attempt: int, max_attempts: int
) -> str:
    """The next state after a failed send: in_doubt (at-most-once never re-sends what may have
    left), failed (refused for good, or attempts used up), else retry."""
    if in_doubt and at_most_once:
        return "in_doubt"
    if permanent or attempt >= max_attempts:
        return "failed"
    return "retry"


def retry_delay_s(attempt: int, *, initial_s: float, max_s: float, jitter: float = 1.0) -> float:
    """Exponential backoff after attempt ``attempt`` (1-based), capped; ``jitter`` (0.9..1.1 in
    use) spreads retries of a batch that failed together."""
    return min(initial_s * 2 ** max(attempt - 1, 0), max_s) * jitter


# --------------------------------------------------------------------------- delivery reports
# What a report about a sent notice means (a DSN, a feedback report, a provider's event), and what
# it does to the notice: queued -> sent -> delivered | bounced (hard, soft) | complained.

ReportKind: TypeAlias = str  # delivered | bounced | complained | delayed


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """One recipient's fate as reported back. ``bounce_type`` is set for ``bounced`` only;
    ``status`` is the enhanced status code (RFC 3463) when known."""

    kind: ReportKind
    bounce_type: str | None = None  # hard | soft
    status: str = ""
    detail: str = ""


# Mailbox full (RFC 3463 X.2.2): many systems answer it with 5.2.2 although it passes; providers
# (and we) count it as a soft bounce.
_SOFT_PERMANENT_STATUSES = frozenset({"5.2.2"})


def classify_dsn(action: str, status: str, detail: str = "") -> DeliveryReport | None:
    """A DSN recipient block (RFC 3464 Action and Status fields) as a report; None for an action
    that says nothing about the recipient (``expanded`` to a list, or an unknown one)."""
    action = action.strip().lower()
    status = status.strip().split(" ", 1)[0]
    if action in ("delivered", "relayed"):
        return DeliveryReport("delivered", status=status, detail=detail)
    if action == "delayed":
        return DeliveryReport("delayed", status=status, detail=detail)
    if action == "failed":
        hard = status.startswith("5.") and status not in _SOFT_PERMANENT_STATUSES
        return DeliveryReport("bounced", "hard" if hard else "soft", status, detail)
    return None


def classify_mailgun(
    event: str, severity: str, status: str = "", detail: str = ""
) -> DeliveryReport | None:
    """A Mailgun webhook event as a report: ``failed`` with severity ``permanent`` is a hard bounce
    (Mailgun gave up); ``temporary`` means Mailgun is still retrying, so only a delay. Events that
    say nothing about delivery (accepted, opened, clicked, unsubscribed) give None."""
    if event == "delivered":
        return DeliveryReport("delivered", status=status, detail=detail)
    if event == "complained":
        return DeliveryReport("complained", detail=detail)
    if event == "failed":
        if severity == "permanent":
            return DeliveryReport("bounced", "hard", status, detail)
        return DeliveryReport("delayed", status=status, detail=detail)
    return None


def classify_twilio(status: str, error_code: str = "") -> DeliveryReport | None:
    """A Twilio status callback as a report: ``delivered``, or ``undelivered`` / ``failed`` (the
    carrier or Twilio gave up: a hard bounce, with Twilio's error code); the steps before
    (queued, sending, sent) decide nothing."""
    if status == "delivered":
        return DeliveryReport("delivered", status=error_code)
    if status in ("undelivered", "failed"):
        return DeliveryReport(
            "bounced", "hard", error_code, f"Twilio: {status} {error_code}".strip()
        )
    return None


@dataclass(frozen=True, slots=True)
class DeliveryChange:
    """What a report does to a notice. ``delivery``: the notice's new delivery state (None: no
    change); ``resend``: send it again later (a soft bounce with re-sends left); ``emit``: the
    event to publish (delivered | bounced | complained), if any."""

    delivery: str | None = None
    bounce_type: str | None = None
    resend: bool = False
    emit: str | None = None


def apply_report(
    *, status: str, delivery: str | None, soft_bounces: int, report: DeliveryReport, resends: int
) -> DeliveryChange:
    """The delivery state machine of one notice (``status``: the send state, ``delivery``: what
    was reported so far).

    Only a notice that went out has a delivery state: ``sent``, or ``sending`` (a fast report can
    overtake the sender's record of "sent", which leaves the delivery state alone); a report for
    one not (yet, or again) sent changes nothing. A final bounce is final: a late 'delivered' does
    not undo it (it would be about a copy the recipient never had). A complaint proves the notice
    arrived and wins over anything.
    A soft bounce re-sends the notice up to ``resends`` times, then counts as a (soft) bounce."""
    if status not in ("sent", "sending") or delivery == "complained":
        return DeliveryChange()
    if report.kind == "complained":
        return DeliveryChange("complained", emit="complained")
    if delivery == "bounced":
        return DeliveryChange()
    if report.kind == "delivered":
        return (
            DeliveryChange()
            if delivery == "delivered"
            else DeliveryChange("delivered", emit="delivered")
        )
    if report.kind == "bounced":
        if report.bounce_type == "soft" and soft_bounces < resends:
            return DeliveryChange(resend=True)
        return DeliveryChange("bounced", report.bounce_type or "hard", emit="bounced")
    return DeliveryChange()  # delayed: the relay keeps trying; nothing is decided yet


# --------------------------------------------------------------------------- channel policy
# Which channels a notice may use, by the recall's severity, in order: email first, then SMS, then
# a postal letter where the severity allows them. A fallback is queued once per notice and channel
# (its own row, unique per channel), only for what must be told (not reminders), and never on a
# channel the customer refused. Safety notices still ignore marketing opt-outs: an SMS or letter
# opt-out is a refusal of the channel, not of marketing. A notice falls back when it cannot reach
# the recipient (no address, a hard or final bounce, refused for good) or, where the severity says
# so, when it is still not confirmed delivered ``unconfirmed_after_days`` after it was sent.

CHANNEL_POLICY: dict[str, tuple[Channel, ...]] = {
    "critical": ("email", "sms", "letter"),
    "high": ("email", "sms", "letter"),
    "medium": ("email", "sms"),
    "low": ("email",),
}
_UNKNOWN_SEVERITY = CHANNEL_POLICY["critical"]  # an unknown severity: the cautious side
SMS_KINDS = frozenset({"initial", "update", "withdrawal"})
FALLBACK_KINDS = SMS_KINDS  # what is told on every channel (a letter too); reminders are email only
# A sent notice not confirmed delivered after this many days falls back to the next channel (None:
# only a failure does). Email providers and SMS carriers report deliveries; letters report nothing.
UNCONFIRMED_FALLBACK_DAYS: dict[str, float | None] = {
    "critical": 2,
    "high": 3,
    "medium": 7,
    "low": None,
}


def policy_channels(severity: str | None) -> tuple[Channel, ...]:
    return CHANNEL_POLICY.get(severity or "", _UNKNOWN_SEVERITY)


def fallback_channel(
    *,
    channel: Channel,
    severity: str | None,
    kind: str,
    phone: str | None,
    sms_opt_out: bool,
    sms_available: bool,
    postal: bool = False,
    letter_opt_out: bool = False,
    letters_available: bool = False,
) -> Channel | None:
    """The next channel the policy allows after ``channel`` could not reach the recipient, skipping
    those the recipient cannot be reached on (no number or address, refused, not configured); None:
    nothing is left and the recipient is unreachable."""
    allowed = policy_channels(severity)
    if channel not in allowed or kind not in FALLBACK_KINDS:
        return None
    usable = {
        "sms": sms_available and bool(phone) and not sms_opt_out,
        "letter": letters_available and postal and not letter_opt_out,
    }
    return next((c for c in allowed[allowed.index(channel) + 1 :] if usable.get(c)), None)


def unconfirmed_fallback_due(
    *,
    channel: Channel,
    severity: str | None,
    kind: str,
    sent_at: datetime,
    delivery: str | None,
    responded: bool,
    now: datetime,
    opened: bool = False,
) -> bool:
    """Whether a sent notice, never confirmed delivered, has waited long enough to be followed on
    the next channel: the severity's ``UNCONFIRMED_FALLBACK_DAYS`` after it was sent, and only
    while nothing says it arrived (a delivery report, a complaint, the customer's answer, the
    alert page opened: :func:`opened_since`) or failed (a bounce falls back at once)."""
    days = UNCONFIRMED_FALLBACK_DAYS.get(severity or "", UNCONFIRMED_FALLBACK_DAYS["critical"])
    if days is None or channel == "letter" or kind not in FALLBACK_KINDS:
        return False
    if delivery is not None or responded or opened:
        return False
    return now - sent_at >= timedelta(days=days)


def opened_since(alert_version: int, viewed_version: int | None) -> bool:
    """Whether the notice's recipient opened the alert page (first-party: ``alert.viewed.v1``,
    the newest version they opened) at the notice's alert version or a later one: what the notice
    told was on the page they saw. A view of an earlier version says nothing of an update sent
    since. When does not matter: a view after the days passed, before the fall back looked,
    counts as well (the versions compare, not two services' clocks)."""
    return viewed_version is not None and viewed_version >= alert_version


def decide_sms(notice: ClaimedNotice, phone: str | None) -> Send | Hold:
    """Whether a claimed SMS notice goes out (the email rules, with the phone as address)."""
    decision = decide_send(
        ClaimedNotice(
            kind=notice.kind,
            recipient_role=notice.recipient_role,
            alert_status=notice.alert_status,
            responded=notice.responded,
            in_doubt=False,
            email=phone,
            safety_email=None,
        ),
        at_most_once=False,
    )
    if isinstance(decision, Send):
        return Send("sms", decision.to, decision.role)
    return decision


def decide_letter(notice: ClaimedNotice, *, has_address: bool, letter_opt_out: bool) -> Send | Hold:
    """Whether a queued letter goes into the batch (the email rules, with the postal address as
    the address; a letter refused since it was queued is not sent)."""
    decision = decide_sms(notice, "postal" if has_address and not letter_opt_out else None)
    if isinstance(decision, Send):
        return Send("letter", decision.to, decision.role)
    return decision
