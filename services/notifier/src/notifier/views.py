"""alert_views.v1: the customer opened their alert page (``alert.viewed.v1``, customer-api's
first view of each alert version). Remembered per (alert, viewer, version), even before the alert
itself arrives (the topics are not ordered with each other); the "not confirmed after N days" fall
back (unconfirmed.py) counts it like an answer (``domain.opened_since``)."""

from __future__ import annotations

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from notifier.models import AlertView
from recall_shared import events as ev
from recall_shared.envelope import Envelope
from recall_shared.handlers import HandlerMap


async def on_alert_viewed(session: AsyncSession, event: ev.AlertViewed, env: Envelope) -> None:
    await session.execute(
        insert(AlertView)
        .values(
            alert_id=event.alert_id,
            customer_id=event.customer_id,
            alert_version=event.alert_version,
            viewed_at=event.viewed_at,
        )
        .on_conflict_do_nothing()
    )


VIEW_HANDLERS: HandlerMap = {ev.AlertViewed: on_alert_viewed}
