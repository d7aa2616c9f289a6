"""The customer's first view of each version of an alert page: ``alert.viewed.v1`` on
alert_views.v1, which the notifier counts like an answer in its "not opened after N days" fall
back (issue 15).

First-party only: the page the signed-in customer opens (``GET /recalls/{alert_id}``), and "I have
read this" (the acknowledge form, ``POST /v1/me/alerts/{id}/acknowledge``: how an app on the JSON
API says so). The link in every message is the same and carries no per-message token, and nothing
is learnt from a message being displayed (no tracking pixel). The JSON API's
``GET /v1/me/alerts/{id}`` does not count: a client may fetch it without anyone reading (a
prefetch, a sync); nor does the list page, where scrolling past an alert is not opening it.

Once per (alert, version): the row is inserted only where none is (a repeat view writes nothing,
so its commit is a read-only one), and only the insert that wrote it queues the event, in the same
transaction. Best effort: a failed write is logged and rolled back and the page is shown all the
same; nothing was written, so the customer's next view records it.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from customer_api.models import CustomerAlert
from recall_shared import events as ev
from recall_shared.event_ids import event_id
from recall_shared.service import ServiceRuntime

log = logging.getLogger(__name__)

# A view already recorded selects nothing: no row is written, the transaction stays read-only.
_RECORD = text(
    """
    INSERT INTO alert_views (alert_id, alert_version, customer_id, viewed_at)
    SELECT v.alert_id, v.alert_version, :customer_id, :viewed_at
    FROM (SELECT CAST(:alert_id AS varchar) AS alert_id, CAST(:alert_version AS integer)
          AS alert_version) v
    WHERE NOT EXISTS (
        SELECT 1 FROM alert_views x
        WHERE x.alert_id = v.alert_id AND x.alert_version = v.alert_version)
    ON CONFLICT DO NOTHING
    RETURNING viewed_at
    """
)
# Losing the last first view in a crash loses its event with it (one transaction), and the next
# view records both: the page need not wait for the WAL flush.
_NO_FLUSH_WAIT = text("SET LOCAL synchronous_commit = off")


async def record_first_view(
    session: AsyncSession, runtime: ServiceRuntime, alert: CustomerAlert
) -> bool:
    """Record the view of ``alert`` (the caller checked it is the signed-in customer's) and
    commit; True when it was the first of this version. Raises what the database raised."""
    now = datetime.now(UTC)
    written = await session.execute(
        _RECORD,
        {
            "alert_id": alert.alert_id,
            "alert_version": alert.alert_version,
            "customer_id": alert.customer_id,
            "viewed_at": now,
        },
    )
    first = written.first() is not None
    if first:
        await session.execute(_NO_FLUSH_WAIT)
        await runtime.outbox.add(
            session,
            ev.AlertViewed(
                alert_id=alert.alert_id,
                customer_id=alert.customer_id,
                recall_id=alert.recall_id,
                alert_version=alert.alert_version,
                viewed_at=now,
            ),
            event_id=event_id("alert-viewed", alert.alert_id, alert.alert_version),
        )
    await session.commit()
    return first


async def record_view_or_log(
    session: AsyncSession, runtime: ServiceRuntime, alert: CustomerAlert
) -> None:
    """:func:`record_first_view`, never failing the page: a database error is logged, the
    transaction rolled back, and the next view records it."""
    alert_id = alert.alert_id  # read now: a failed transaction expires the entity
    try:
        await record_first_view(session, runtime, alert)
    except (SQLAlchemyError, OSError):
        log.warning(
            "recording an alert view failed; the next view records it",
            extra={"alert_id": alert_id},
            exc_info=True,
        )
        try:
            await session.rollback()
        except (SQLAlchemyError, OSError):
            log.debug("rollback after a failed view failed too", exc_info=True)
