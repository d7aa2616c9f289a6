"""notifier's pure decisions: what a run of alert events does to the alerts the notifier knows, and
which notices it queues.

A run of ``alert.raised.v1`` / ``alert.updated.v1`` events is planned as if each were applied on
its own, in order: an event older than the version held is ignored; a stored event's state becomes
the alert's newest; a raised alert, or an update that moves the version on, queues a notice per
recipient.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TypeAlias

from recall_shared import events as ev

AlertEvent: TypeAlias = ev.AlertRaised | ev.AlertUpdated


@dataclass(frozen=True, slots=True)
class NoticeDraft:
    """A notice to queue: one per (alert, kind, version, recipient)."""

    alert_id: str
    customer_id: str
    recipient_customer_id: str
    role: str  # purchaser | account_admin
    kind: str  # initial | update
    alert_version: int

    @property
    def key(self) -> tuple[str, str, int, str]:
        return (self.alert_id, self.kind, self.alert_version, self.recipient_customer_id)


@dataclass
class AlertPlan:
    """``stored``: the newest state per alert, to upsert (insertion order); ``notices``: to queue,
    first occurrence of each key only (a repeat would be a no-op on the unique key anyway)."""

    stored: dict[str, ev.AlertState] = field(default_factory=dict)
    notices: list[NoticeDraft] = field(default_factory=list)


def recipients(state: ev.AlertState) -> list[tuple[str, str]]:
    """(role, recipient customer) of an alert's notices: the purchaser (whose safety contact, when
    set, gets the mail), and a business account's admin when that is someone else."""
    out = [("purchaser", state.customer_id)]
    admin = state.business_account_admin_id
    if admin and admin != state.customer_id:
        out.append(("account_admin", admin))
    return out


def plan_alert_events(known_versions: Mapping[str, int], events: Iterable[AlertEvent]) -> AlertPlan:
    """Apply ``events`` in order to the versions held (``known_versions``: alert id -> version)."""
    versions = dict(known_versions)
    plan = AlertPlan()
    keys: set[tuple[str, str, int, str]] = set()
    for event in events:
        state = event.alert
        held = versions.get(state.alert_id)
        if held is not None and held > state.alert_version:
            continue  # older than what we hold
        versions[state.alert_id] = state.alert_version
        plan.stored.pop(state.alert_id, None)  # re-inserted: the order is of the last store
        plan.stored[state.alert_id] = state
        if isinstance(event, ev.AlertRaised):
            kind = "initial" if state.alert_version == 1 else "update"
        elif held is None or held < state.alert_version:
            kind = "update"  # the scope changed
        else:
            continue  # an update of the version held: new content, nothing to tell
        for role, recipient in recipients(state):
            draft = NoticeDraft(
                state.alert_id, state.customer_id, recipient, role, kind, state.alert_version
            )
            if draft.key not in keys:
                keys.add(draft.key)
                plan.notices.append(draft)
    return plan


# --------------------------------------------------------------------------- sending decisions
# What the sender does with a claimed notice, and with the answer of a send: pure, so every rule
# is unit-tested (tests/unit/test_domain.py) and the sender only does the I/O.

Channel: TypeAlias = str  # email (the only channel so far)


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
