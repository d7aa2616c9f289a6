"""Seller notices from stop_sales.v1, and sale-after-recall incidents from alerts.v1.

- ``stop_sale.declared.v1``: the seller of the listing gets one notice per recall (a second listing
  of the same recall joins the notice while nothing of it has gone out), emailed and POSTed to each
  of its webhook endpoints by the dispatcher (recall_intake.seller_dispatch) after
  ``seller_notice_settle_s`` (the listings of one publication arrive on several partitions: they go
  out together). A listing added once the seller has been told (an amendment, a listing the
  catalog sent later, a listing stopped again after a lift) tells the seller again: an update
  (``seller_notice.updated``, the email again) naming the listings added; a listing re-declared
  with no more to do tells nobody (domain.notice_change). The seller acknowledges, confirms the
  removal, and the notice is closed out (recall_intake.api_sellers).
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

from recall_intake.domain import notice_change
from recall_intake.models import SaleIncident, SellerNotice, WebhookDelivery, WebhookEndpoint
from recall_intake.settings import Settings
from recall_shared import events as ev
from recall_shared.envelope import Envelope
from recall_shared.handlers import HandlerMap

_NAMESPACE = uuid.UUID("6f1c7d2e-5a4b-4c1e-9d3f-16a0b5e2c7a1")


def stable_id(kind: str, *parts: str) -> str:
    return f"{kind}_{uuid.uuid5(_NAMESPACE, chr(0x1F).join(parts)).hex}"


def notice_round(notice: SellerNotice) -> tuple[str, str]:
    """The webhook event type and delivery key of what the seller is told now: the notice, or its
    latest update (each update is delivered once, whatever came before)."""
    if notice.updates == 0:
        return "seller_notice.created", notice.notice_id
    return "seller_notice.updated", f"{notice.notice_id}/{notice.updates}"


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
        "updates": notice.updates,
        "added_product_ids": list(notice.added_product_ids),
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
    session: AsyncSession,
    seller_id: str,
    event_type: str,
    key: str,
    data: dict[str, Any],
    *,
    not_before: datetime | None = None,
) -> int:
    """One delivery per active endpoint of the seller, first tried at ``not_before`` (now if
    None); returns how many were queued."""
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
            next_attempt_at=not_before or now,
            created_at=now,
        )
        result = await session.execute(stmt.on_conflict_do_nothing(index_elements=["delivery_id"]))
        queued += result.rowcount or 0  # type: ignore[attr-defined]
    return queued


class SellerNotices:
    def __init__(self, settings: Settings) -> None:
        self.ack_window = timedelta(seconds=settings.seller_ack_window_s)
        self.settle = timedelta(seconds=settings.seller_notice_settle_s)

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
                    email_next_at=now + self.settle,
                    note="",
                )
                .on_conflict_do_nothing(index_elements=["recall_id", "seller_id"])
                .returning(SellerNotice.notice_id)
            )
        ).first()
        notice = await session.get(
            SellerNotice, notice_id, with_for_update=True, populate_existing=True
        )
        assert notice is not None
        if inserted is not None:
            event_type, key = notice_round(notice)
            await queue_webhooks(
                session,
                event.seller_id,
                event_type,
                key,
                notice_document(notice),
                not_before=now + self.settle,
            )
            return
        # Another listing of a recall the seller has a notice of, an amendment, or a repeat.
        # Locked first (the dispatcher holds a delivery or the notice while it sends it), so
        # "told" is what has gone out, not what was about to.
        pending = await self._round_deliveries(session, notice)
        told = (
            notice.email_status != "pending"
            or notice.email_attempts > 0
            or any(d.attempts > 0 or d.status != "pending" for d in pending)
        )
        change = notice_change(
            notice.product_ids, notice.lifted_product_ids, event.product_id, told
        )
        notice.recall_version = max(notice.recall_version, event.recall_version)
        if change == "none":
            return
        notice.title, notice.severity = event.title, event.severity
        if event.product_id not in notice.product_ids:
            notice.product_ids = [*notice.product_ids, event.product_id]
        notice.lifted_product_ids = [p for p in notice.lifted_product_ids if p != event.product_id]
        if change == "join":  # nothing has gone out: what is about to go names the listing too
            if notice.updates > 0 and event.product_id not in notice.added_product_ids:
                notice.added_product_ids = [*notice.added_product_ids, event.product_id]
            for delivery in pending:
                delivery.payload = {**delivery.payload, "data": notice_document(notice)}
            return
        # Told already: more stock to take off sale, so the seller is told again, and is due to
        # acknowledge again.
        notice.updates += 1
        notice.added_product_ids = [event.product_id]
        notice.status, notice.closed_at = "notified", None
        notice.ack_due_at = now + self.ack_window
        notice.email_status, notice.email_attempts = "pending", 0
        notice.email_next_at, notice.email_error = now + self.settle, None
        event_type, key = notice_round(notice)
        await session.flush()
        await queue_webhooks(
            session,
            event.seller_id,
            event_type,
            key,
            notice_document(notice),
            not_before=now + self.settle,
        )

    async def _round_deliveries(
        self, session: AsyncSession, notice: SellerNotice
    ) -> list[WebhookDelivery]:
        """The webhook deliveries of the notice's latest round (its creation, or its latest
        update), locked."""
        event_type, key = notice_round(notice)
        endpoints = (
            await session.execute(
                select(WebhookEndpoint.endpoint_id).where(
                    WebhookEndpoint.seller_id == notice.seller_id
                )
            )
        ).scalars()
        ids = [stable_id("whd", endpoint_id, event_type, key) for endpoint_id in endpoints]
        if not ids:
            return []
        rows = await session.execute(
            select(WebhookDelivery)
            .where(WebhookDelivery.delivery_id.in_(ids))
            .order_by(WebhookDelivery.delivery_id)
            .with_for_update()
        )
        return list(rows.scalars())

    async def on_stop_sale_lifted(
        self, session: AsyncSession, event: ev.StopSaleLifted, env: Envelope
    ) -> None:
        if event.reason != "recall_closed":
            # The listing is sellable again; the notice of the recall stands, and a stop-sale of
            # the listing declared again (a letter withdrawn, an amendment) is news to the seller.
            await session.execute(
                update(SellerNotice)
                .where(
                    SellerNotice.recall_id == event.recall_id,
                    SellerNotice.seller_id == event.seller_id,
                    SellerNotice.product_ids.contains([event.product_id]),
                    ~SellerNotice.lifted_product_ids.contains([event.product_id]),
                )
                .values(
                    lifted_product_ids=func.array_append(
                        SellerNotice.lifted_product_ids, event.product_id
                    )
                )
            )
            return
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
