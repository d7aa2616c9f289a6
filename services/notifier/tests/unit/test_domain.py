"""Planning a run of alert events: versions in order, notices per recipient, repeats dropped."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from notifier.domain import NoticeDraft, plan_alert_events, recipients
from recall_shared import events as ev


def state(alert_id: str = "al-1", version: int = 1, admin: str | None = None) -> ev.AlertState:
    return ev.AlertState(
        alert_id=alert_id,
        alert_version=version,
        customer_id="c-1",
        recall_id="rc-1",
        recall_version=1,
        seller_id="s-1",
        tier="confirmed",
        lines=[
            ev.AffectedLine(
                order_id="o-1",
                line_id="l-1",
                product_id="p-1",
                seller_id="s-1",
                units=1,
                currency="EUR",
                purchased_at=datetime(2025, 1, 1, tzinfo=UTC),
                unit_price=Decimal("1"),
            )
        ],
        recall=ev.RecallContent(
            title="Kettle",
            hazard="Burns.",
            severity="high",
            stop_using="Stop.",
            remedies=[ev.Remedy(type="replacement")],
        ),
        business_account_admin_id=admin,
    )


def raised(**kw: object) -> ev.AlertRaised:
    return ev.AlertRaised(alert=state(**kw))  # type: ignore[arg-type]


def updated(**kw: object) -> ev.AlertUpdated:
    return ev.AlertUpdated(alert=state(**kw))  # type: ignore[arg-type]


def kinds(plan) -> list[tuple[str, str, int]]:  # type: ignore[no-untyped-def]
    return [(n.recipient_customer_id, n.kind, n.alert_version) for n in plan.notices]


def test_recipients_are_the_buyer_and_another_admin() -> None:
    assert recipients(state()) == [("purchaser", "c-1")]
    assert recipients(state(admin="c-1")) == [("purchaser", "c-1")]
    assert recipients(state(admin="adm")) == [("purchaser", "c-1"), ("account_admin", "adm")]


def test_a_new_alert_is_stored_and_told_to_each_recipient_once() -> None:
    plan = plan_alert_events({}, [raised(admin="adm"), raised(admin="adm")])
    assert list(plan.stored) == ["al-1"]
    assert plan.notices == [
        NoticeDraft("al-1", "c-1", "c-1", "purchaser", "initial", 1),
        NoticeDraft("al-1", "c-1", "adm", "account_admin", "initial", 1),
    ]


def test_versions_are_applied_in_order() -> None:
    plan = plan_alert_events(
        {}, [raised(), updated(version=1), updated(version=3), raised(version=2)]
    )
    assert plan.stored["al-1"].alert_version == 3, "the older raised after v3 is ignored"
    assert kinds(plan) == [("c-1", "initial", 1), ("c-1", "update", 3)]


def test_the_versions_held_beforehand_count() -> None:
    plan = plan_alert_events({"al-1": 3}, [raised(version=2), updated(version=3)])
    assert plan.stored["al-1"].alert_version == 3, "an update of the version held is stored"
    assert kinds(plan) == [], "... but tells nobody anything new"
    plan = plan_alert_events({"al-1": 3}, [raised(version=3)])
    assert kinds(plan) == [("c-1", "update", 3)], "a raised alert at the held version is queued"


def test_the_first_event_held_of_an_alert_is_its_initial_notice_whatever_its_version() -> None:
    """A matcher pass that failed after announcing sends a later pass's update (version 2) of an
    alert whose raise never arrived: the customer was never told, so this is the initial notice."""
    assert kinds(plan_alert_events({}, [updated(version=2)])) == [("c-1", "initial", 2)]
    assert kinds(plan_alert_events({}, [raised(version=2)])) == [("c-1", "initial", 2)]
    assert kinds(plan_alert_events({"al-1": 1}, [updated(version=2)])) == [("c-1", "update", 2)]


def test_stored_keeps_the_last_state_per_alert_in_order_of_the_last_store() -> None:
    plan = plan_alert_events(
        {}, [raised(alert_id="a"), raised(alert_id="b"), updated(alert_id="a")]
    )
    assert list(plan.stored) == ["b", "a"]
