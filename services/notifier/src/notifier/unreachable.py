"""Nobody silent: the customers an open alert has not reached and, as things stand, will not.

A recipient of an open alert is *unreachable* when none of its notices of that alert reached them
or is still on its way (pending, sending, in doubt, or sent without a bounce), and one of them is
stuck: ``no_contact`` (waiting for an address: customers.v1 gave none we may use) or
``all_channels_failed`` (every channel tried failed for good or bounced: email, and SMS where the
policy and the customer allow it). The queue is a query over the
notices, not a table of its own, so it can never disagree with them: a customer leaves it the moment
a new address releases their notice, or another notice reaches them.

Operators read it at ``GET /v1/unreachable`` (oldest first); ``notifier_unreachable_customers
{reason}`` gauges its size, recounted every ``unreachable_refresh_s``.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query
from prometheus_client import CollectorRegistry, Gauge
from pydantic import BaseModel, Field
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notifier.api import OperatorDep
from notifier.settings import Settings
from recall_shared.cursors import BadCursor, decode_cursor, encode_cursor
from recall_shared.http import Cursor, SessionDep
from recall_shared.waits import wait_set

log = logging.getLogger(__name__)

Reason = Literal["no_contact", "all_channels_failed"]

# Per recipient: the stuck notices of open alerts with nothing of the same alert reaching them.
_STUCK = """
    WITH stuck AS (
        SELECT n.recipient_customer_id AS customer_id, n.recipient_role, n.alert_id, n.status,
               coalesce(n.delivery_detail, n.last_error) AS error, n.created_at
        FROM notices n JOIN alerts a ON a.alert_id = n.alert_id AND a.status = 'open'
        WHERE (n.status IN ('waiting_contact', 'failed') OR n.delivery = 'bounced')
          AND n.kind <> 'withdrawal'
          AND NOT EXISTS (
              SELECT 1 FROM notices r
              WHERE r.alert_id = n.alert_id AND r.recipient_customer_id = n.recipient_customer_id
                AND (r.status IN ('pending', 'sending', 'in_doubt')
                     OR (r.status = 'sent' AND r.delivery IS DISTINCT FROM 'bounced')))),
    queue AS (
        SELECT customer_id,
               CASE WHEN bool_and(status = 'waiting_contact') THEN 'no_contact'
                    ELSE 'all_channels_failed' END AS reason,
               array_agg(DISTINCT alert_id ORDER BY alert_id) AS alert_ids,
               array_agg(DISTINCT recipient_role ORDER BY recipient_role) AS roles,
               min(created_at) AS since,
               (array_agg(error ORDER BY created_at DESC))[1] AS last_error
        FROM stuck GROUP BY customer_id)
"""
_PAGE = text(
    _STUCK
    + """
    SELECT * FROM queue
    WHERE (CAST(:after_at AS timestamptz) IS NULL OR (since, customer_id) > (:after_at, :after_id))
      AND (CAST(:reason AS text) IS NULL OR reason = :reason)
    ORDER BY since, customer_id LIMIT :n
    """
)
_COUNTS = text(_STUCK + "SELECT reason, count(*) AS n FROM queue GROUP BY reason")


class UnreachableCustomer(BaseModel):
    customer_id: str = Field(description="The recipient nobody could reach")
    reason: Reason
    alert_ids: list[str] = Field(description="Open alerts they have not been told of")
    roles: list[str] = Field(description="As whom they were to be told (purchaser, account_admin)")
    since: datetime = Field(description="When the first of those notices was queued")
    last_error: str | None = Field(description="The last failure or bounce diagnostic")


class UnreachablePage(BaseModel):
    items: list[UnreachableCustomer]
    counts: dict[str, int] = Field(description="The whole queue's size by reason")
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page")


async def unreachable_counts(session: AsyncSession) -> dict[str, int]:
    rows = (await session.execute(_COUNTS)).all()
    counts = {"no_contact": 0, "all_channels_failed": 0}
    counts.update({r.reason: int(r.n) for r in rows})
    return counts


class UnreachableGauge:
    """Keeps ``notifier_unreachable_customers{reason}`` current (a background task)."""

    def __init__(
        self,
        *,
        settings: Settings,
        session_factory: async_sessionmaker[AsyncSession],
        registry: CollectorRegistry,
    ) -> None:
        self.settings = settings
        self.session_factory = session_factory
        self.gauge = Gauge(
            "notifier_unreachable_customers",
            "Customers an open alert has not reached and cannot reach as things stand "
            "(GET /v1/unreachable), by reason.",
            ["reason"],
            registry=registry,
        )
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def refresh(self) -> dict[str, int]:
        async with self.session_factory() as session:
            counts = await unreachable_counts(session)
        for reason, n in counts.items():
            self.gauge.labels(reason).set(n)
        return counts

    async def run(self, _runtime: object = None) -> None:
        while not self._stopping.is_set():
            try:
                await self.refresh()
            except Exception:
                log.warning("counting the unreachable customers failed", exc_info=True)
            await wait_set(self._stopping, self.settings.unreachable_refresh_s)


router = APIRouter(prefix="/v1")


@router.get(
    "/unreachable",
    response_model=UnreachablePage,
    tags=["notices"],
    summary="Customers no notice could reach, oldest first (operator key)",
)
async def unreachable(
    _: OperatorDep,
    session: SessionDep,
    reason: Reason | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Cursor = None,
) -> UnreachablePage:
    after_at, after_id = None, ""
    if cursor:
        try:
            after_at, after_id = decode_cursor(cursor)
        except BadCursor as exc:
            raise HTTPException(422, str(exc)) from None
    rows = (
        await session.execute(
            _PAGE,
            {
                "after_at": after_at,
                "after_id": after_id,
                "reason": reason,
                "n": limit + 1,
            },
        )
    ).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return UnreachablePage(
        items=[
            UnreachableCustomer(
                customer_id=r.customer_id,
                reason=r.reason,
                alert_ids=list(r.alert_ids),
                roles=list(r.roles),
                since=r.since,
                last_error=r.last_error,
            )
            for r in rows
        ],
        counts=await unreachable_counts(session),
        next_cursor=encode_cursor(rows[-1].since, rows[-1].customer_id) if more else None,
    )
