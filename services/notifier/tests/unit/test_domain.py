"""Pure decisions of the notifier: alert events planned into notices; whether, where and how a
notice is sent; what a failed send means."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from notifier.domain import (
    ClaimedNotice,
    DeliveryChange,
    DeliveryReport,
    Hold,
    NoticeDraft,
    Send,
    after_send_error,
    apply_report,
    classify_dsn,
    classify_mailgun,
    decide_send,
    plan_alert_events,
    recipients,
    retry_delay_s,
)
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


def raised(alert_id: str = "al-1", version: int = 1, admin: str | None = None) -> ev.AlertRaised:
    return ev.AlertRaised(alert=state(alert_id, version, admin))


def updated(alert_id: str = "al-1", version: int = 1, admin: str | None = None) -> ev.AlertUpdated:
    return ev.AlertUpdated(alert=state(alert_id, version, admin))


def kinds(plan) -> list[tuple[str, str, int]]:
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


# --------------------------------------------------------------------------- sending decisions


def claimed(**kw: object) -> ClaimedNotice:
    values: dict = dict(
        kind="initial",
        recipient_role="purchaser",
        alert_status="open",
        responded=False,
        in_doubt=False,
        email="buyer@example.com",
        safety_email=None,
    )
    values.update(kw)
    return ClaimedNotice(**values)


def test_a_notice_goes_to_the_safety_contact_first() -> None:
    assert decide_send(claimed(), at_most_once=False) == Send(
        "email", "buyer@example.com", "purchaser"
    )
    assert decide_send(claimed(safety_email="s@example.com"), at_most_once=False) == Send(
        "email", "s@example.com", "safety_contact"
    )
    admin = claimed(recipient_role="account_admin", safety_email="s@example.com")
    assert decide_send(admin, at_most_once=False) == Send("email", "s@example.com", "account_admin")


def test_without_an_address_the_notice_waits_for_one() -> None:
    assert decide_send(claimed(email=None), at_most_once=False) == Hold("waiting_contact")
    assert decide_send(claimed(email=""), at_most_once=False) == Hold("waiting_contact")


def test_a_withdrawn_alert_cancels_all_but_the_withdrawal_even_in_doubt() -> None:
    held = decide_send(claimed(alert_status="withdrawn", in_doubt=True), at_most_once=True)
    assert held == Hold("cancelled", "alert withdrawn")
    withdrawal = claimed(kind="withdrawal", alert_status="withdrawn")
    assert isinstance(decide_send(withdrawal, at_most_once=False), Send)


def test_reminders_stop_once_the_alert_is_not_open_or_the_customer_responded() -> None:
    closed = decide_send(claimed(kind="reminder", alert_status="closed"), at_most_once=False)
    assert closed == Hold("cancelled", "reminders stopped: alert closed")
    answered = decide_send(claimed(kind="reminder", responded=True), at_most_once=False)
    assert answered == Hold("cancelled", "reminders stopped: alert open, customer responded")
    assert isinstance(decide_send(claimed(kind="reminder"), at_most_once=False), Send)


def test_in_doubt_is_resent_at_least_once_and_recorded_final_at_most_once() -> None:
    assert isinstance(decide_send(claimed(in_doubt=True), at_most_once=False), Send)
    held = decide_send(claimed(in_doubt=True), at_most_once=True)
    assert isinstance(held, Hold) and held.status == "in_doubt" and held.final


def test_what_a_send_error_leads_to() -> None:
    def after(**kw: object) -> str:
        values: dict = dict(
            permanent=False, in_doubt=False, at_most_once=False, attempt=1, max_attempts=3
        )
        values.update(kw)
        return after_send_error(**values)

    assert after() == "retry"
    assert after(permanent=True) == "failed"
    assert after(attempt=3) == "failed"
    assert after(in_doubt=True) == "retry", "at least once: what may have left is sent again"
    assert after(in_doubt=True, at_most_once=True) == "in_doubt"


def test_retry_delays_double_up_to_the_cap() -> None:
    delays = [retry_delay_s(a, initial_s=5, max_s=30) for a in (1, 2, 3, 4, 5)]
    assert delays == [5, 10, 20, 30, 30]
    assert retry_delay_s(2, initial_s=5, max_s=30, jitter=1.1) == pytest.approx(11)


# --------------------------------------------------------------------------- delivery reports

HARD = DeliveryReport("bounced", "hard", "5.1.1")
SOFT = DeliveryReport("bounced", "soft", "4.2.2")


def change(
    report: DeliveryReport, *, status: str = "sent", delivery: str | None = None, soft: int = 0
) -> DeliveryChange:
    return apply_report(
        status=status, delivery=delivery, soft_bounces=soft, report=report, resends=2
    )


def test_dsn_actions_and_statuses_mean_what_rfc_3464_says() -> None:
    assert classify_dsn("failed", "5.1.1") == DeliveryReport("bounced", "hard", "5.1.1")
    assert classify_dsn("Failed", "4.4.7 (expired)") == DeliveryReport("bounced", "soft", "4.4.7")
    full = classify_dsn("failed", "5.2.2")
    assert full is not None and full.bounce_type == "soft", "mailbox full passes"
    for action, status in [("delayed", "4.4.1"), ("delivered", "2.0.0")]:
        report = classify_dsn(action, status)
        assert report is not None and report.kind == action, (action, status)
    assert classify_dsn("expanded", "2.0.0") is None


def test_mailgun_events_mean_what_its_docs_say() -> None:
    hard = classify_mailgun("failed", "permanent", "550")
    assert hard is not None and hard.bounce_type == "hard"
    for event, severity, kind in [
        ("failed", "temporary", "delayed"),
        ("delivered", "", "delivered"),
        ("complained", "", "complained"),
    ]:
        report = classify_mailgun(event, severity)
        assert report is not None and report.kind == kind, (event, severity)
    assert classify_mailgun("opened", "") is None


def test_a_sent_notice_is_delivered_once() -> None:
    assert change(DeliveryReport("delivered")) == DeliveryChange("delivered", emit="delivered")
    assert change(DeliveryReport("delivered"), delivery="delivered") == DeliveryChange()


def test_a_hard_bounce_is_final() -> None:
    assert change(HARD) == DeliveryChange("bounced", "hard", emit="bounced")
    assert change(HARD, delivery="delivered") == DeliveryChange("bounced", "hard", emit="bounced")
    assert change(DeliveryReport("delivered"), delivery="bounced") == DeliveryChange()
    assert change(HARD, delivery="bounced") == DeliveryChange()


def test_a_soft_bounce_resends_until_the_resends_are_used_up() -> None:
    assert change(SOFT, soft=0) == DeliveryChange(resend=True)
    assert change(SOFT, soft=1) == DeliveryChange(resend=True)
    assert change(SOFT, soft=2) == DeliveryChange("bounced", "soft", emit="bounced")


def test_a_complaint_proves_delivery_and_wins() -> None:
    for before in (None, "delivered", "bounced"):
        assert change(DeliveryReport("complained"), delivery=before).emit == "complained"
    assert change(HARD, delivery="complained") == DeliveryChange()


def test_delays_and_reports_for_unsent_notices_change_nothing() -> None:
    assert change(DeliveryReport("delayed", status="4.4.1")) == DeliveryChange()
    for status in ("pending", "waiting_contact", "failed", "cancelled"):
        assert change(HARD, status=status) == DeliveryChange()
    # A fast report can overtake the sender's record of "sent".
    assert change(DeliveryReport("delivered"), status="sending").emit == "delivered"
