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
transaction. Best effort: a failed write is logged, counted
(``customer_api_view_writes_failed_total``) and rolled back and the page is shown all the same;
nothing was written, so the customer's next view records it. Bounded: the write's statements (and
its locks) are given up after ``view_write_timeout_ms``, so a stuck database delays the page by that
much and no more.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from fastapi import Request
from prometheus_client import Counter
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
# For the rest of this transaction only (the page's reads are done; commit or rollback ends it): a
# statement running, or waiting for a lock, longer than this is cancelled by the server.
_BOUNDED = text(
    "SELECT set_config('statement_timeout', :ms, true), set_config('lock_timeout', :ms, true)"
)
# PostgreSQL's codes for a statement cancelled by statement_timeout, and for lock_timeout.
_TIMED_OUT = frozenset({"57014", "55P03"})


class ViewRecorder:
    """Records first views (one per app, made by ``create_app``; the routes find it with
    :func:`recorder`), counting the writes it gave up."""

    def __init__(self, runtime: ServiceRuntime, timeout_ms: int) -> None:
        self.runtime = runtime
        self.timeout = f"{timeout_ms}ms"
        self.failed = Counter(
            "customer_api_view_writes_failed_total",
            "Alert views not recorded (the page was shown; the next view records it), by cause: "
            "timeout (the write took longer than view_write_timeout_ms) or error.",
            ["cause"],
            registry=runtime.metrics.registry,
        )
        for cause in ("timeout", "error"):
            self.failed.labels(cause)  # both series from the start, at 0

    async def record_first_view(self, session: AsyncSession, alert: CustomerAlert) -> bool:
        """Record the view of ``alert`` (the caller checked it is the signed-in customer's) and
        commit; True when it was the first of this version. Raises what the database raised."""
        now = datetime.now(UTC)
        await session.execute(_BOUNDED, {"ms": self.timeout})
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
            await self.runtime.outbox.add(
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

    async def record_or_log(self, session: AsyncSession, alert: CustomerAlert) -> None:
        """:meth:`record_first_view`, never failing the page: a database error or timeout is
        logged and counted, the transaction rolled back, and the next view records it."""
        alert_id = alert.alert_id  # read now: a failed transaction expires the entity
        try:
            await self.record_first_view(session, alert)
        except (SQLAlchemyError, OSError) as exc:
            cause = failure_cause(exc)
            self.failed.labels(cause).inc()
            log.warning(
                "recording an alert view failed; the next view records it",
                extra={"alert_id": alert_id, "cause": cause},
                exc_info=True,
            )
            try:
                await session.rollback()
            except (SQLAlchemyError, OSError):
                log.debug("rollback after a failed view failed too", exc_info=True)


def failure_cause(exc: BaseException) -> str:
    """'timeout' for a statement or lock wait the server cancelled (view_write_timeout_ms),
    else 'error'."""
    sqlstate = getattr(getattr(exc, "orig", None), "sqlstate", None)
    return "timeout" if sqlstate in _TIMED_OUT else "error"


def recorder(request: Request) -> ViewRecorder:
    """The app's :class:`ViewRecorder`."""
    found: ViewRecorder = request.app.state.view_recorder
    return found
