"""Recording what became of a sent notice: one report (from a DSN, a feedback report or the email
provider's webhook) applied to its notice by :func:`notifier.domain.apply_report`, with the event
it calls for (notification.delivered.v1 / bounced.v1 / complained.v1) in the same transaction.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notifier import remedy_notices
from notifier.domain import DeliveryChange, DeliveryReport, apply_report, contract_kind
from notifier.fallback import Unreached, queue_fallback
from notifier.handlers import wake_sender
from notifier.remedy_notices import REMEDY_NOTICE_KINDS
from notifier.settings import Settings
from recall_shared import events as ev
from recall_shared.outbox import Outbox

log = logging.getLogger(__name__)

_LOAD = text(
    """
    SELECT n.notice_id, n.status, n.delivery, n.soft_bounces, n.alert_id, n.customer_id, n.kind,
           n.alert_version, n.channel, n.recipient_customer_id, n.recipient_role, n.reminder_no,
           a.state ->> 'recall_id' AS recall_id, a.state -> 'recall' ->> 'severity' AS severity,
           ct.phone, ct.sms_opt_out, rn.case_id AS remedy_case_id
    FROM notices n LEFT JOIN alerts a ON a.alert_id = n.alert_id
    LEFT JOIN contacts ct ON ct.customer_id = n.recipient_customer_id
    LEFT JOIN remedy_notices rn ON rn.notice_id = n.notice_id
    WHERE n.notice_id = :id FOR UPDATE OF n
    """
)
_SET_DELIVERY = text(
    """
    UPDATE notices SET delivery = :delivery, bounce_type = :bounce_type,
        delivery_status = :status, delivery_detail = :detail, delivery_at = :at
    WHERE notice_id = :id
    """
)
_NOTE = text(
    "UPDATE notices SET delivery_status = :status, delivery_detail = :detail WHERE notice_id = :id"
)
_RESEND = text(
    """
    UPDATE notices SET status = 'pending', soft_bounces = soft_bounces + 1,
        next_attempt_at = now() + make_interval(secs => :delay), last_error = :detail,
        delivery_status = :status, delivery_detail = :detail
    WHERE notice_id = :id
    """
)


class DeliveryRecorder:
    """Applies delivery reports to notices; shared by the bounce listener and the webhook."""

    def __init__(
        self,
        *,
        settings: Settings,
        session_factory: async_sessionmaker[AsyncSession],
        outbox: Outbox,
        registry: CollectorRegistry,
        sms_available: bool = False,
    ) -> None:
        self.settings = settings
        self.sms_available = sms_available
        self.session_factory = session_factory
        self.outbox = outbox
        self.reports = Counter(
            "notifier_delivery_reports_total",
            "Delivery reports received, by source and what they said (delivered, bounced, "
            "complained, delayed) and whether they named a notice of ours.",
            ["source", "kind", "matched"],
            registry=registry,
        )

    async def record(
        self, notice_id: str, report: DeliveryReport, *, source: ev.DeliverySource, at: datetime
    ) -> DeliveryChange | None:
        """Apply one report in its own transaction; None when the notice is unknown."""
        async with self.session_factory() as session, session.begin():
            change = await self.apply(session, notice_id, report, source=source, at=at)
        self.reports.labels(source, report.kind, "yes" if change is not None else "no").inc()
        return change

    def unmatched(self, report: DeliveryReport, *, source: ev.DeliverySource) -> None:
        self.reports.labels(source, report.kind, "no").inc()

    async def apply(
        self,
        session: AsyncSession,
        notice_id: str,
        report: DeliveryReport,
        *,
        source: ev.DeliverySource,
        at: datetime,
    ) -> DeliveryChange | None:
        row = (await session.execute(_LOAD, {"id": notice_id})).first()
        if row is None:
            log.warning(
                "delivery report for an unknown notice",
                extra={"notice_id": notice_id, "source": source, "kind": report.kind},
            )
            return None
        change = apply_report(
            status=row.status,
            delivery=row.delivery,
            soft_bounces=row.soft_bounces,
            report=report,
            resends=self.settings.soft_bounce_resends,
        )
        values = {"id": notice_id, "status": report.status[:20], "detail": report.detail[:2000]}
        if change.resend:
            await session.execute(_RESEND, {**values, "delay": self.settings.soft_bounce_retry_s})
            await wake_sender(session)
        elif change.delivery is not None:
            await session.execute(
                _SET_DELIVERY,
                {
                    **values,
                    "delivery": change.delivery,
                    "bounce_type": change.bounce_type,
                    "at": at,
                },
            )
        elif report.kind == "delayed" and row.delivery is None:
            await session.execute(_NOTE, values)
        if change.emit == "bounced" and row.channel in ("email", "sms"):
            await queue_fallback(  # it did not reach them: the next channel, if any
                session,
                Unreached.of(row),
                sms_available=self.sms_available,
                letters_available=self.settings.letters_available,
            )
        if change.emit is not None and row.recall_id is not None:
            await self.outbox.add(
                session,
                self._event(row, change, report, source=source, at=at),
                event_id=f"notice:{notice_id}:{change.emit}",
            )
        log.info(
            "delivery report",
            extra={
                "notice_id": notice_id,
                "source": source,
                "kind": report.kind,
                "status": report.status,
                "delivery": change.delivery,
                "resend": change.resend,
            },
        )
        return change

    @staticmethod
    def _event(
        row: Any,
        change: DeliveryChange,
        report: DeliveryReport,
        *,
        source: ev.DeliverySource,
        at: datetime,
    ) -> ev.Event:
        if row.kind in REMEDY_NOTICE_KINDS:  # a case's label, refund or replacement (issue 14)
            return remedy_notices.status_event(
                row,
                recall_id=row.recall_id,
                status=change.emit or "delivered",
                at=at,
                bounce_type=change.bounce_type if change.emit == "bounced" else None,
                reason=report.detail if change.emit == "bounced" else "",
                source=source,
            )
        common = {
            "notice_id": row.notice_id,
            "alert_id": row.alert_id,
            "customer_id": row.customer_id,
            "recall_id": row.recall_id,
            "kind": contract_kind(row.kind),
            "alert_version": row.alert_version,
            "channel": row.channel,
            "source": source,
        }
        if change.emit == "delivered":
            return ev.NoticeDelivered(**common, delivered_at=at)
        if change.emit == "complained":
            return ev.NoticeComplained(**common, complained_at=at)
        return ev.NoticeBounced(
            **common,
            bounce_type="soft" if change.bounce_type == "soft" else "hard",
            status=report.status[:200],
            reason=report.detail[:2000],
            bounced_at=at,
        )
