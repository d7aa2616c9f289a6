"""The monthly progress report (issue 14) as the CPSC asks it, and as the seller sees it: units
corrected by remedy type, notices delivered vs bounced, contacts by channel, incidents before and
after the recall. Each figure is checked against the states it counts: the cases completed per
remedy, the notices' reported fates, the counts each recall version stated."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from recall_shared import events as ev
from recall_shared.testing import eventually
from refund_logistics.handlers import case_id_for
from refund_logistics.report import CPSC_COLUMNS

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]


def version(rc: ev.RecallSnapshot, number: int, **content: Any) -> ev.RecallSnapshot:
    return rc.model_copy(
        update={"version": number, "content": rc.content.model_copy(update=content)}
    )


async def test_the_monthly_figures_equal_the_states_they_count(rls: Any, kit: Any) -> None:
    rc = version(kit.recall(), 1, incidents_reported=3, injuries_reported=1)
    await rls.publish(kit.published(rc))
    # Amended twice: more incidents and an injury, then the incidents corrected down by one.
    await rls.publish(
        ev.RecallAmended(recall=version(rc, 2, incidents_reported=6, injuries_reported=2))
    )
    await rls.publish(
        ev.RecallAmended(recall=version(rc, 3, incidents_reported=5, injuries_reported=2))
    )
    now = datetime.now(UTC)
    period = f"{now.year:04d}-{now.month:02d}"
    # Four customers: refund on destruction (2 units), replacement (3 units), one still deciding
    # (1 unit), one reached only by SMS (1 unit).
    destroyer, replaced, deciding, texted = (kit.new_customer() for _ in range(4))
    a_destroy = kit.alert(rc, destroyer, lines=[(2, "19.99")])
    a_replace = kit.alert(rc, replaced, lines=[(3, "9.99")])
    a_deciding = kit.alert(rc, deciding, lines=[(1, "19.99")])
    a_texted = kit.alert(rc, texted, lines=[(1, "19.99")])
    for a in (a_destroy, a_replace, a_deciding, a_texted):
        await rls.publish(kit.raised(a))

    def notice(a: ev.AlertState) -> dict[str, Any]:
        return {
            "notice_id": str(uuid.uuid4()),
            "alert_id": a.alert_id,
            "customer_id": a.customer_id,
            "recall_id": rc.recall_id,
            "kind": "initial",
            "alert_version": 1,
        }

    # Email: two delivered, one bounced (that customer is then texted), one sent with no report.
    delivered = [notice(a_destroy), notice(a_replace)]
    bounced, unreported = notice(a_texted), notice(a_deciding)
    for n in (*delivered, bounced, unreported):
        await rls.publish(ev.NoticeSent(**n, recipient_role="purchaser", sent_at=now))
    for n in delivered:
        await rls.publish(ev.NoticeDelivered(**n, source="mailgun", delivered_at=now))
    await rls.publish(
        ev.NoticeBounced(
            **bounced, bounce_type="hard", status="5.1.1", source="dsn", bounced_at=now
        )
    )
    sms = {**notice(a_texted), "channel": "sms"}
    await rls.publish(ev.NoticeSmsSent(**sms, recipient_role="purchaser", sent_at=now))
    await rls.publish(ev.NoticeDelivered(**sms, source="twilio", delivered_at=now))

    destroy = kit.remedy_request(a_destroy, "refund_on_destruction")
    replace = kit.remedy_request(a_replace, "replacement")
    for req in (destroy, replace):
        await rls.publish(req)
    destroy_case, replace_case = case_id_for(destroy.request_id), case_id_for(replace.request_id)
    await rls.wait_for_case(destroy_case, lambda c: c["waiting_for"] == "proof")
    assert (await rls.submit_proof(destroy_case, destroyer)).status_code == 200
    await rls.wait_for_case(destroy_case, lambda c: c["state"] == "refunded")
    await rls.wait_for_case(replace_case, lambda c: c["waiting_for"] == "seller")
    key, _ = await rls.issue_key("seller", rc.seller_id)
    seller = {"X-Api-Key": key}
    shipped = await rls.client.post(
        f"/v1/cases/{replace_case}/fulfilment",
        json={"kind": "replacement", "tracking_number": "TRK1"},
        headers=seller,
    )
    assert shipped.status_code == 200, shipped.text

    async def settled() -> dict | None:
        rep = (
            await rls.client.get(
                f"/v1/recalls/{rc.recall_id}/report?period={period}", headers=seller
            )
        ).json()
        ready = (
            rep["notices_delivered"]["total"] == 3
            and rep["notices_bounced"]["total"] == 1
            and rep["units_corrected"]["total"] == 5
            and rep["incidents"]["to_date"] == 5
        )
        return rep if ready else None

    rep = await eventually(settled, timeout=20, interval=0.2)
    # The seller's report: what each state adds up to.
    by_remedy = {r: v["units_corrected_total"] for r, v in rep["remedies"].items()}
    assert by_remedy == {
        "refund_on_destruction": 2,  # the refunded case's units
        "replacement": 3,  # the shipped replacement's
        "refund_with_return": 0,
        "repair": 0,
    }
    assert {r: v["units_corrected_period"] for r, v in rep["remedies"].items()} == by_remedy
    assert rep["units_affected"] == 7 and rep["units_uncorrected"] == 2
    assert rep["notices_delivered"] == {"period": 3, "total": 3}  # 2 emails, 1 SMS
    assert rep["notices_bounced"] == {"period": 1, "total": 1}
    assert {ch: c["customers_notified"] for ch, c in rep["notices_by_channel"].items()} == {
        "email": 3,  # the two delivered, the one with no report; not the bounced
        "sms": 1,
    }
    assert rep["incidents"] == {"before_recall": 3, "since_recall": 2, "to_date": 5}
    assert rep["injuries"] == {"before_recall": 1, "since_recall": 1, "to_date": 2}

    # The CPSC export carries the same figures.
    body = await rls.client.get(
        f"/v1/recalls/{rc.recall_id}/report/cpsc-monthly?period={period}&format=csv", headers=seller
    )
    (row,) = list(csv.DictReader(io.StringIO(body.text)))
    assert list(row) == list(CPSC_COLUMNS)
    issue_14_columns = {
        "notices_delivered_period": "3",
        "notices_delivered_to_date": "3",
        "notices_bounced_period": "1",
        "notices_bounced_to_date": "1",
        "units_refunded_with_return_period": "0",
        "units_refunded_on_destruction_period": "2",
        "units_replaced_period": "3",
        "units_repaired_period": "0",
        "incidents_before_recall": "3",
        "incidents_since_recall": "2",
        "injuries_before_recall": "1",
        "injuries_since_recall": "1",
    }
    assert {k: row[k] for k in issue_14_columns} == issue_14_columns
    assert row["customers_contacted_by_channel"] == "email=3; sms=1"
    assert (row["units_refunded_on_destruction_to_date"], row["units_replaced_to_date"]) == (
        "2",
        "3",
    )


async def test_a_recall_that_states_no_incidents_leaves_the_cells_empty(rls: Any, kit: Any) -> None:
    rc = kit.recall()
    await rls.publish(kit.published(rc))
    key, _ = await rls.issue_key("seller", rc.seller_id)

    async def known() -> dict | None:
        r = await rls.client.get(f"/v1/recalls/{rc.recall_id}/report", headers={"X-Api-Key": key})
        return r.json() if r.status_code == 200 else None

    rep = await eventually(known, timeout=15, interval=0.2)
    assert rep["incidents"] == {"before_recall": None, "since_recall": None, "to_date": None}
    body = await rls.client.get(
        f"/v1/recalls/{rc.recall_id}/report/cpsc-monthly?format=csv", headers={"X-Api-Key": key}
    )
    (row,) = list(csv.DictReader(io.StringIO(body.text)))
    assert row["incidents_before_recall"] == "" and row["injuries_since_recall"] == ""
