"""Material amendments (issue 14), free of I/O: which changes of a recall are told again to the
customers already alerted (notifier.domain.material_changes), and the "amendment" notices a run of
alert events plans for them; wording edits tell nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from notifier.domain import AlertEvent, contract_kind, material_changes, plan_alert_events
from notifier.render import NoticeRenderer, catalogs
from recall_shared import events as ev
from recall_shared.i18n import LOCALES


def content(**kw: Any) -> ev.RecallContent:
    values: dict[str, Any] = dict(
        title="Kettle KX-1",
        product_description="A 1.7 l kettle.",
        hazard="The base can overheat and cause burns.",
        hazard_type="burn",
        severity="medium",
        stop_using="Unplug the kettle and do not use it again.",
        remedies=[ev.Remedy(type="refund_with_return"), ev.Remedy(type="replacement")],
        consumer_contact="recalls@acme.example",
    )
    values.update(kw)
    return ev.RecallContent(**values)


BASE = content()


@pytest.mark.parametrize(
    ("change", "reasons"),
    [
        ({"severity": "high"}, ["severity_raised"]),
        ({"severity": "critical"}, ["severity_raised"]),
        ({"hazard_type": "fire"}, ["hazard_raised"]),
        ({"incidents_reported": 3}, ["hazard_raised"]),
        ({"injuries_reported": 1}, ["hazard_raised"]),
        ({"kind": "safety_alert"}, []),  # a recall become a safety alert: not a raise
        ({"stop_using": "Stop using it and keep it away from children."}, ["stop_using_changed"]),
        (
            {"remedies": [ev.Remedy(type="refund_with_return")]},
            ["remedy_removed"],
        ),
        (
            {"remedies": [*BASE.remedies, ev.Remedy(type="repair")]},
            ["remedy_added"],
        ),
        (
            {"remedies": [ev.Remedy(type="refund_on_destruction")], "severity": "high"},
            ["severity_raised", "remedy_added", "remedy_removed"],
        ),
    ],
)
def test_material_changes_are_named(change: dict[str, Any], reasons: list[str]) -> None:
    assert material_changes(BASE, content(**change)) == reasons


@pytest.mark.parametrize(
    "change",
    [
        {"title": "Acme kettle KX-1 (white)"},
        {"product_description": "A 1.7 litre electric kettle, white."},
        {"hazard": "The kettle's base may overheat, which can cause burns."},
        {"consumer_contact": "help@acme.example"},
        {"severity": "low"},  # lowered: nothing more to fear
        {"stop_using": "unplug the kettle, and do not use it again!"},  # case and punctuation
        {"stop_using": "Unplug the kettle  and do not\nuse it again."},  # spacing
        {"hazard_type": "Burn"},
        {"images": ["https://img.example/kettle.jpg"]},
        {"texts": {"de": ev.LocalizedText(title="Wasserkocher KX-1")}},
        {"remedies": [ev.Remedy(type="replacement"), ev.Remedy(type="refund_with_return")]},
        {  # instructions reworded, the same remedies
            "remedies": [
                ev.Remedy(type="refund_with_return", instructions="Use the prepaid label."),
                ev.Remedy(type="replacement"),
            ]
        },
    ],
)
def test_wording_edits_are_not_material(change: dict[str, Any]) -> None:
    assert material_changes(BASE, content(**change)) == []


def test_a_safety_alert_become_a_recall_is_a_raised_hazard() -> None:
    alert = content(kind="safety_alert")
    assert material_changes(alert, content(kind="recall")) == ["hazard_raised"]


def test_fewer_incidents_are_not_a_raise() -> None:
    before = content(incidents_reported=5)
    assert material_changes(before, content(incidents_reported=5)) == []
    assert material_changes(before, content(incidents_reported=None)) == []


def alert_state(
    recall: ev.RecallContent, *, version: int = 1, recall_version: int = 2
) -> ev.AlertState:
    return ev.AlertState(
        alert_id="al-1",
        alert_version=version,
        customer_id="c-1",
        recall_id="rc-1",
        recall_version=recall_version,
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
        recall=recall,
        business_account_admin_id="adm",
    )


def test_a_material_amendment_of_the_version_held_queues_an_amendment_per_recipient() -> None:
    amended = ev.AlertUpdated(alert=alert_state(content(severity="high"), recall_version=2))
    plan = plan_alert_events({"al-1": 1}, [amended], {"al-1": BASE})
    assert [(n.recipient_customer_id, n.kind, n.alert_version, n.number) for n in plan.notices] == [
        ("c-1", "amendment", 1, 2),
        ("adm", "amendment", 1, 2),
    ]
    assert plan.stored["al-1"].recall.severity == "high"


def test_a_cosmetic_amendment_queues_nothing_but_is_stored() -> None:
    reworded = ev.AlertUpdated(alert=alert_state(content(title="Kettle KX-1 (white)")))
    plan = plan_alert_events({"al-1": 1}, [reworded], {"al-1": BASE})
    assert plan.notices == []
    assert plan.stored["al-1"].recall.title == "Kettle KX-1 (white)"


def test_each_amendment_in_a_run_is_compared_with_the_one_before() -> None:
    """Raised then amended twice in one run: the second amendment is compared with the first
    (held within the run), and each gets its own notice (numbered by recall version)."""
    run: list[AlertEvent] = [
        ev.AlertRaised(alert=alert_state(BASE, recall_version=1)),
        ev.AlertUpdated(alert=alert_state(content(severity="high"), recall_version=2)),
        ev.AlertUpdated(alert=alert_state(content(severity="high"), recall_version=3)),
        ev.AlertUpdated(alert=alert_state(content(severity="critical"), recall_version=4)),
    ]
    plan = plan_alert_events({}, run)
    purchaser = [(n.kind, n.number) for n in plan.notices if n.recipient_customer_id == "c-1"]
    assert purchaser == [("initial", 0), ("amendment", 2), ("amendment", 4)]


def test_without_the_content_held_an_update_of_the_same_version_tells_nothing() -> None:
    plan = plan_alert_events({"al-1": 1}, [ev.AlertUpdated(alert=alert_state(content()))])
    assert plan.notices == []


def test_an_amendment_is_an_update_in_the_events() -> None:
    assert contract_kind("amendment") == "update"
    assert [contract_kind(k) for k in ("initial", "update", "withdrawal", "reminder")] == [
        "initial",
        "update",
        "withdrawal",
        "reminder",
    ]


@pytest.mark.parametrize("lang", LOCALES)
def test_an_amendment_notice_says_it_is_an_important_change_in_its_language(lang: str) -> None:
    renderer = NoticeRenderer("https://shop.example/account")
    state = alert_state(content(severity="high"))
    amendment = renderer.render(
        state, kind="amendment", locale=lang, recipient_name="Alex", recipient_role="purchaser"
    )
    update = renderer.render(
        state, kind="update", locale=lang, recipient_name="Alex", recipient_role="purchaser"
    )
    s = catalogs().messages(lang)
    assert amendment.subject.endswith(s["subject.amendment"])
    assert s["intro.amendment"] in amendment.text and s["intro.amendment"] not in update.text
    assert amendment.subject != update.subject
