"""A customer's label confirmation (remedy.label_confirmed.v1 on remedies.v1, as customer-api sends
it) through Kafka and PostgreSQL: the matcher raises the alert to confirmed on alerts.v1, and keeps
it so when the recall is amended."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from purchase_matcher.domain import alert_id_for
from recall_shared import events as ev
from recall_shared.testing import eventually

pytestmark = pytest.mark.integration


def label_confirmed(
    rid: str, customer: str, lot: str, alert_version: int = 1, alert_id: str | None = None
) -> ev.LabelConfirmed:
    return ev.LabelConfirmed(
        alert_id=alert_id or alert_id_for(rid, customer),
        customer_id=customer,
        recall_id=rid,
        alert_version=alert_version,
        lot=lot,
        confirmed_at=datetime.now(UTC),
    )


async def updates_after(matcher, before, count: int = 1):
    """Wait for ``count`` new events on alerts.v1 (the labels group works on its own)."""

    async def arrived():
        new = await matcher.alerts_after(before)
        return new if len(new) >= count else None

    return await eventually(arrived, timeout=20, interval=0.2)


async def test_a_confirmed_label_upgrades_the_alert_and_an_amendment_keeps_it(
    matcher, build
) -> None:
    rid, kettle, alice = build.new_id("rc"), build.new_id("kettle"), build.new_id("alice")
    rule = ev.ScopeRule(
        product_ids=[kettle], lots=ev.CodeRule(ranges=[ev.CodeRange(first="L 100", last="L 199")])
    )
    await matcher.send_and_settle(build.order(alice, kettle))
    await matcher.send_and_settle(ev.RecallPublished(recall=build.snapshot(rid, rule)))
    raised = await matcher.alerts()
    assert [(r.type, r.event.alert.tier) for r in raised] == [
        ("alert.raised.v1", "possibly_affected")
    ]

    await matcher.send(label_confirmed(rid, alice, "l150"))
    [updated] = await updates_after(matcher, raised)
    assert updated.type == "alert.updated.v1" and updated.key == alice
    state = updated.event.alert
    assert (state.alert_version, state.tier) == (2, "confirmed")
    assert [(x.tier, x.unknown_attributes) for x in state.lines] == [("confirmed", [])]
    assert await matcher.scalar(f"SELECT tier FROM alerts WHERE recall_id = '{rid}'") == "confirmed"

    # The same confirmation again (a repeat, or a second check) changes nothing.
    seen = await matcher.alerts()
    await matcher.send(label_confirmed(rid, alice, "L 150", alert_version=2))

    async def taken() -> bool | None:
        at = await matcher.scalar(
            f"SELECT count(*) FROM label_confirmations WHERE lot = 'L 150' AND recall_id = '{rid}'"
        )
        return at == 1 or None

    await eventually(taken, timeout=20, interval=0.2)
    assert await matcher.alerts_after(seen) == []

    # An amendment of the recall's wording re-checks every alert: the label still confirms it.
    amended = build.snapshot(rid, rule, version=2, title="Acme kettle KX-1 recall (corrected)")
    await matcher.send_and_settle(ev.RecallAmended(recall=amended))
    [after] = await matcher.alerts_after(seen)
    assert after.type == "alert.updated.v1"
    assert (after.event.alert.recall_version, after.event.alert.tier) == (2, "confirmed")
    assert after.event.alert.alert_version == 2  # the scope did not change: no new notice due


async def test_a_confirmation_naming_another_alert_is_dead_lettered(matcher, build) -> None:
    rid, alice = build.new_id("rc"), build.new_id("alice")
    wrong = label_confirmed(rid, alice, "L1", alert_id=alert_id_for(rid, "someone-else"))
    matcher.expected_dead_letters.add(await matcher.send(wrong))

    async def lettered():
        return await matcher.dead_letters() or None

    [letter] = await eventually(lettered, timeout=20, interval=0.2)
    assert b"not the alert" in dict(letter.headers)["dlq_error"]
