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
        if held is None:
            # Nothing was told yet, whatever the version: an update whose raise never arrived here
            # (a matcher pass that failed after announcing) is the customer's first notice.
            kind = "initial"
        elif isinstance(event, ev.AlertRaised):
            kind = "initial" if state.alert_version == 1 else "update"
        elif held < state.alert_version:
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
