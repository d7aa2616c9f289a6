"""Seller notices from stop_sales.v1, and sale-after-recall incidents from alerts.v1.

- ``stop_sale.declared.v1``: the seller of the listing gets one notice per recall (a second listing
  of the same recall joins the notice), emailed and POSTed to each of its webhook endpoints by the
  dispatcher (recall_intake.seller_dispatch). The seller acknowledges, confirms the removal, and the
  notice is closed out (recall_intake.api_sellers).
- ``stop_sale.lifted.v1`` with ``recall_closed``: the recall's closeout closes the notice.
- ``alert.sale_after_recall_detected.v1``: an incident in the operators' queue and the seller's
  report, and a webhook to the seller.

Every write is keyed by a deterministic id, so a redelivered event changes nothing.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from recall_intake.models import SaleIncident, SellerNotice, WebhookDelivery, WebhookEndpoint
from recall_intake.settings import Settings
from recall_shared import events as ev
from recall_shared.envelope import Envelope
from recall_shared.handlers import HandlerMap

_NAMESPACE = uuid.UUID("6f1c7d2e-5a4b-4c1e-9d3f-16a0b5e2c7a1")


def stable_id(kind: str, *parts: str) -> str:
    return f"{kind}_{uuid.uuid5(_NAMESPACE, chr(0x1F).join(parts)).hex}"


def notice_document(notice: SellerNotice) -> dict[str, Any]:
    """A notice as its webhook and its API show it."""
    return {
        "notice_id": notice.notice_id,
        "recall_id": notice.recall_id,
        "recall_version": notice.recall_version,
        "seller_id": notice.seller_id,
        "title": notice.title,
        "severity": notice.severity,
        "product_ids": list(notice.product_ids),
        "status": notice.status,
        "notified_at": notice.notified_at.isoformat(),
        "ack_due_at": notice.ack_due_at.isoformat(),
    }


def incident_document(incident: SaleIncident) -> dict[str, Any]:
    return {
        "incident_id": incident.incident_id,
        "recall_id": incident.recall_id,
        "seller_id": incident.seller_id,
        "product_id": incident.product_id,
        "order_id": incident.order_id,
        "line_id": incident.line_id,
        "placed_at": incident.placed_at.isoformat(),
        "recall_published_at": incident.recall_published_at.isoformat(),
        "status": incident.status,
    }


async def queue_webhooks(
    session: AsyncSession, seller_id: str, event_type: str, key: str, data: dict[str, Any]
) -> int:
    """One delivery per active endpoint of the seller; returns how many were queued."""
    endpoints = (
        await session.execute(
            select(WebhookEndpoint.endpoint_id).where(
                WebhookEndpoint.seller_id == seller_id, WebhookEndpoint.disabled_at.is_(None)
            )
        )
    ).scalars()
    now = datetime.now(UTC)
    queued = 0
    for endpoint_id in endpoints:
        delivery_id = stable_id("whd", endpoint_id, event_type, key)
        payload = {"id": delivery_id, "type": event_type, "created": now.isoformat(), "data": data}
        stmt = insert(WebhookDelivery).values(
            delivery_id=delivery_id,
            endpoint_id=endpoint_id,
            seller_id=seller_id,
            event_type=event_type,
            payload=payload,
            status="pending",
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
        result = await session.execute(stmt.on_conflict_do_nothing(index_elements=["delivery_id"]))
        queued += result.rowcount or 0  # type: ignore[attr-defined]
    return queued


class SellerNotices:
    def __init__(self, settings: Settings) -> None:
        self.ack_window = timedelta(seconds=settings.seller_ack_window_s)

    async def on_stop_sale_declared(
        self, session: AsyncSession, event: ev.StopSaleDeclared, env: Envelope
    ) -> None:
        now = datetime.now(UTC)
        notice_id = stable_id("sn", event.recall_id, event.seller_id)
        inserted = (
            await session.execute(
                insert(SellerNotice)
                .values(
                    notice_id=notice_id,
                    recall_id=event.recall_id,
                    seller_id=event.seller_id,
                    recall_version=event.recall_version,
                    title=event.title,
                    severity=event.severity,
                    product_ids=[event.product_id],
                    status="notified",
                    notified_at=now,
                    ack_due_at=now + self.ack_window,
                    email_status="pending",
                    email_attempts=0,
                    email_next_at=now,
                    note="",
                )
                .on_conflict_do_nothing(index_elements=["recall_id", "seller_id"])
                .returning(SellerNotice.notice_id)
            )
        ).first()
        if inserted is None:  # another listing of a recall the seller was told of, or a repeat
            await session.execute(
                update(SellerNotice)
                .where(
                    SellerNotice.notice_id == notice_id,
                    ~SellerNotice.product_ids.contains([event.product_id]),
                )
                .values(
                    product_ids=func.array_append(SellerNotice.product_ids, event.product_id),
                    recall_version=func.greatest(SellerNotice.recall_version, event.recall_version),
                )
            )
            return
        notice = await session.get(SellerNotice, notice_id)
        assert notice is not None
        await queue_webhooks(
            session, event.seller_id, "seller_notice.created", notice_id, notice_document(notice)
        )

    async def on_stop_sale_lifted(
        self, session: AsyncSession, event: ev.StopSaleLifted, env: Envelope
    ) -> None:
        if event.reason != "recall_closed":
            return  # the listing is sellable again; the notice of the recall stands
        await session.execute(
            update(SellerNotice)
            .where(
                SellerNotice.recall_id == event.recall_id,
                SellerNotice.seller_id == event.seller_id,
                SellerNotice.status != "closed",
            )
            .values(status="closed", closed_at=event.lifted_at)
        )

    async def on_sale_after_recall(
        self, session: AsyncSession, event: ev.SaleAfterRecallDetected, env: Envelope
    ) -> None:
        incident_id = stable_id("inc", event.recall_id, event.line_id)
        inserted = (
            await session.execute(
                insert(SaleIncident)
                .values(
                    incident_id=incident_id,
                    recall_id=event.recall_id,
                    seller_id=event.seller_id,
                    product_id=event.product_id,
                    order_id=event.order_id,
                    line_id=event.line_id,
                    placed_at=event.placed_at,
                    recall_published_at=event.recall_published_at,
                    status="open",
                    resolution="",
                    detected_at=env.time,
                )
                .on_conflict_do_nothing(index_elements=["incident_id"])
                .returning(SaleIncident.incident_id)
            )
        ).first()
        if inserted is None:
            return
        incident = await session.get(SaleIncident, incident_id)
        assert incident is not None
        await queue_webhooks(
            session,
            event.seller_id,
            "sale_incident.detected",
            incident_id,
            incident_document(incident),
        )

    def handlers(self) -> HandlerMap:
        return {
            ev.StopSaleDeclared: self.on_stop_sale_declared,
            ev.StopSaleLifted: self.on_stop_sale_lifted,
            ev.SaleAfterRecallDetected: self.on_sale_after_recall,
        }
