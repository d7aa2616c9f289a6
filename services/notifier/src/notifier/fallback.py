"""The next channel: when an email notice cannot reach its recipient (no address, a hard or final
bounce, refused for good), a notice of the same (alert, kind, version, recipient) on the next
channel the policy allows (:func:`notifier.domain.fallback_channel`) is queued in the same
transaction. It is a notice of its own (own id, row and events, ``channel = 'sms'``), so the
email notice keeps its history and a customer counts as reached when either reaches them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from notifier.domain import fallback_channel
from notifier.handlers import NOTICE_NAMESPACE

SMS_SENDER_CHANNEL = "notices_notifier_sms"

_QUEUE = text(
    """
    WITH queued AS (
        INSERT INTO notices (notice_id, alert_id, customer_id, recipient_customer_id,
                             recipient_role, kind, alert_version, reminder_no, channel, status,
                             attempts)
        VALUES (:id, :alert_id, :customer_id, :recipient, :role, :kind, :version, :reminder_no,
                :channel, 'pending', 0)
        ON CONFLICT DO NOTHING
        RETURNING notice_id)
    SELECT pg_notify(:wake, '') FROM queued
    """
)


@dataclass(frozen=True, slots=True)
class Unreached:
    """An email notice that did not reach its recipient, and what the policy needs to know."""

    notice_id: str
    alert_id: str
    customer_id: str
    recipient_customer_id: str
    recipient_role: str
    kind: str
    alert_version: int
    reminder_no: int
    severity: str | None
    phone: str | None
    sms_opt_out: bool


def fallback_notice_id(notice_id: str, channel: str) -> str:
    """The id of a notice's fallback on ``channel``: deterministic, so a repeat queues nothing."""
    return str(uuid.uuid5(NOTICE_NAMESPACE, f"{notice_id}\x1f{channel}"))


async def queue_fallback(
    session: AsyncSession, notice: Unreached, *, sms_available: bool
) -> str | None:
    """Queue the next channel's notice if the policy allows one; its id, or None."""
    channel = fallback_channel(
        channel="email",
        severity=notice.severity,
        kind=notice.kind,
        phone=notice.phone,
        sms_opt_out=notice.sms_opt_out,
        sms_available=sms_available,
    )
    if channel is None:
        return None
    fallback_id = fallback_notice_id(notice.notice_id, channel)
    await session.execute(
        _QUEUE,
        {
            "id": fallback_id,
            "alert_id": notice.alert_id,
            "customer_id": notice.customer_id,
            "recipient": notice.recipient_customer_id,
            "role": notice.recipient_role,
            "kind": notice.kind,
            "version": notice.alert_version,
            "reminder_no": notice.reminder_no,
            "channel": channel,
            "wake": SMS_SENDER_CHANNEL,
        },
    )
    return fallback_id
