"""Events the tests build, imported where they are used (no fixture hands them out): a recall's
snapshot with the rules a test gives, a closed or a withdrawn alert for the shared runner's and
outbox's tests, and the events about a few alerts known by number that the services' batch tests
apply both in batches and one by one."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from recall_shared import envelope
from recall_shared import events as ev
from recall_shared.handlers import Delivery


def recall_snapshot(
    *rules: ev.ScopeRule,
    recall_id: str = "rc-1",
    version: int = 1,
    seller_id: str | None = None,
    title: str = "Kettle recall",
    published_at: datetime = datetime(2025, 1, 1, tzinfo=UTC),
) -> ev.RecallSnapshot:
    """A published high-severity recall (a refund on destruction) reaching what ``rules`` reach."""
    return ev.RecallSnapshot(
        recall_id=recall_id,
        version=version,
        seller_id=seller_id,
        content=ev.RecallContent(
            title=title,
            hazard="Burns.",
            severity="high",
            stop_using="Stop using it.",
            remedies=[ev.Remedy(type="refund_on_destruction")],
        ),
        rules=list(rules),
        published_at=published_at,
    )


def alert_closed(alert_id: str, customer_id: str = "cust-1") -> ev.AlertClosed:
    return ev.AlertClosed(
        alert_id=alert_id, customer_id=customer_id, recall_id="rc-1", closed_at=datetime.now(UTC)
    )


def alert_withdrawn(customer_id: str, seq: int) -> ev.AlertWithdrawn:
    """``alert_version`` carries a per-key sequence number in the ordering tests."""
    return ev.AlertWithdrawn(
        alert_id=f"al-{customer_id}",
        alert_version=seq,
        customer_id=customer_id,
        recall_id="rc-1",
        recall_version=1,
        reason="test",
    )


def delivered(events: Sequence[ev.Event], source: str) -> list[Delivery[Any]]:
    """The events as the runner hands them to a handler, each in its own envelope."""
    return [Delivery(e, envelope.wrap(e, source=source)) for e in events]


@dataclass(frozen=True)
class NumberedAlerts:
    """A few alerts known by number (0, 1, 2, ...), each of its own customer and recall, and the
    notices about them: the events a batch test writes its sequences of."""

    alert_ids: Sequence[str]
    customer_of: Mapping[str, str]
    recall_of: Mapping[str, str]
    notice_ids: Sequence[str]
    at: datetime

    def withdrawn(self, alert: int, version: int) -> ev.AlertWithdrawn:
        alert_id = self.alert_ids[alert]
        return ev.AlertWithdrawn(
            alert_id=alert_id,
            alert_version=version,
            customer_id=self.customer_of[alert_id],
            recall_id=self.recall_of[alert_id],
            recall_version=2,
            reason="scope corrected",
        )

    def closed(self, alert: int) -> ev.AlertClosed:
        alert_id = self.alert_ids[alert]
        return ev.AlertClosed(
            alert_id=alert_id,
            customer_id=self.customer_of[alert_id],
            recall_id=self.recall_of[alert_id],
            closed_at=self.at,
        )

    def notice_fields(self, number: int, alert: int) -> dict[str, Any]:
        """What every notice event says of notice ``number`` of ``alert``'s first version."""
        alert_id = self.alert_ids[alert]
        return {
            "notice_id": self.notice_ids[number],
            "alert_id": alert_id,
            "customer_id": self.customer_of[alert_id],
            "recall_id": self.recall_of[alert_id],
            "kind": "initial",
            "alert_version": 1,
        }

    def notice(
        self, number: int, alert: int, *, sent: bool, minute: int = 0
    ) -> ev.NoticeSent | ev.NoticeFailed:
        """Notice ``number`` sent (or failed for now) ``minute`` minutes after ``at``."""
        fields = self.notice_fields(number, alert)
        at = self.at + timedelta(minutes=minute)
        if sent:
            return ev.NoticeSent(**fields, recipient_role="purchaser", sent_at=at)
        return ev.NoticeFailed(**fields, reason="451 try later", permanent=False, failed_at=at)
