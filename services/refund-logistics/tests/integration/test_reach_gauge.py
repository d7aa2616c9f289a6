"""Reach per recall on /metrics: ``recall_reach_customers{recall_id,measure}`` for open recalls
only, counted as the recall's report counts (affected: alert not withdrawn; notified: a notice
reached them), and a recall's series are gone once it closes (bounded label set, decision 0010)."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from recall_shared import events as ev
from recall_shared.testing import eventually

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

SERIES = re.compile(r"^recall_reach_customers\{(?P<labels>[^}]*)\} (?P<value>\S+)$", re.M)


async def reach_on_metrics(rls: Any) -> dict[str, dict[str, float]]:
    """recall id -> measure -> value, as /metrics shows it now."""
    text = (await rls.client.get("/metrics")).text
    out: dict[str, dict[str, float]] = {}
    for m in SERIES.finditer(text):
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group("labels")))
        out.setdefault(labels["recall_id"], {})[labels["measure"]] = float(m.group("value"))
    return out


def notice(a: ev.AlertState) -> dict[str, Any]:
    return {
        "notice_id": str(uuid.uuid4()),
        "alert_id": a.alert_id,
        "customer_id": a.customer_id,
        "recall_id": a.recall_id,
        "kind": "initial",
        "alert_version": 1,
    }


async def test_open_recalls_show_their_reach_and_a_closed_one_leaves(rls: Any, kit: Any) -> None:
    rc, done = kit.recall(), kit.recall()
    await rls.publish(kit.published(rc))
    await rls.publish(kit.published(done))
    now = datetime.now(UTC)
    reached, bounced, withdrawn = (kit.alert(rc, kit.new_customer()) for _ in range(3))
    for a in (reached, bounced, withdrawn):
        await rls.publish(kit.raised(a))
    await rls.publish(
        ev.AlertWithdrawn(
            alert_id=withdrawn.alert_id,
            alert_version=2,
            customer_id=withdrawn.customer_id,
            recall_id=rc.recall_id,
            recall_version=rc.version,
            reason="scope corrected",
        )
    )
    await rls.publish(ev.NoticeSent(**notice(reached), recipient_role="purchaser", sent_at=now))
    bounce = notice(bounced)
    await rls.publish(ev.NoticeSent(**bounce, recipient_role="purchaser", sent_at=now))
    await rls.publish(
        ev.NoticeBounced(**bounce, bounce_type="hard", status="5.1.1", source="dsn", bounced_at=now)
    )

    async def done_shown() -> bool:
        return done.recall_id in await reach_on_metrics(rls)

    await eventually(done_shown, timeout=15, interval=0.2)  # open, so shown: then closed
    await rls.publish(ev.RecallClosed(recall=done, closed_at=now))

    async def counted() -> dict[str, dict[str, float]] | None:
        shown = await reach_on_metrics(rls)
        right = shown.get(rc.recall_id) == {"affected": 2.0, "notified": 1.0}
        # The closure comes on its own partition: wait for it too. A closed recall's series must go.
        return shown if right and done.recall_id not in shown else None

    await eventually(counted, timeout=15, interval=0.2)

    await rls.publish(ev.RecallClosed(recall=rc, closed_at=now))

    async def left() -> bool:
        return rc.recall_id not in await reach_on_metrics(rls)

    await eventually(left, timeout=15, interval=0.2)
