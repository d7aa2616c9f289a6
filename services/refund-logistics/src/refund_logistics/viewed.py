"""alert_views.v1 for the effectiveness report: the first time each customer opened their alert
page (``alert.viewed.v1``, customer-api's first-party signal; no tracking pixel). Only the first
view of an alert is kept: the report counts customers who looked, not how often."""

from __future__ import annotations

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from recall_shared import events as ev
from recall_shared.envelope import Envelope
from recall_shared.handlers import HandlerMap
from refund_logistics.models import AlertViewRecord


async def on_alert_viewed(session: AsyncSession, event: ev.AlertViewed, env: Envelope) -> None:
    await session.execute(
        insert(AlertViewRecord)
        .values(
            alert_id=event.alert_id,
            customer_id=event.customer_id,
            recall_id=event.recall_id,
            viewed_at=event.viewed_at,
        )
        .on_conflict_do_nothing()
    )


VIEW_HANDLERS: HandlerMap = {ev.AlertViewed: on_alert_viewed}
