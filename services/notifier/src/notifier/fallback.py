"""The next channel: when a notice cannot reach its recipient (no address, a hard or final bounce,
refused for good, or not confirmed delivered in the days the policy gives it: ``unconfirmed.py``),
a notice of the same (alert, kind, version, recipient) on the next channel the policy allows
(:func:`notifier.domain.fallback_channel`: email, then SMS, then a letter) is queued in the same
transaction. It is a notice of its own (own id, row and events, ``channel = 'sms'`` or
``'letter'``), so the first notice keeps its history and a customer counts as reached when any
reaches them. It keeps the first notice's trace context, so its send joins the recall's trace too
(notifier.notice_traces).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from notifier.domain import fallback_channel
from notifier.handlers import NOTICE_NAMESPACE

SMS_SENDER_CHANNEL = "notices_notifier_sms"
# Queued letters wait for the daily batch (letter_batch.py); nothing to wake.
_WAKE = {"sms": SMS_SENDER_CHANNEL, "letter": ""}
_POSTAL = text(
    "SELECT postal_address IS NOT NULL AND postal_undeliverable_at IS NULL AS postal, "
    "letter_opt_out FROM contacts "
    "WHERE customer_id = :id"
)

_QUEUE = text(
    """
    WITH queued AS (
        INSERT INTO notices (notice_id, alert_id, customer_id, recipient_customer_id,
                             recipient_role, kind, alert_version, reminder_no, channel, status,
                             attempts, traceparent, tracestate)
        VALUES (:id, :alert_id, :customer_id, :recipient, :role, :kind, :version, :reminder_no,
                :channel, 'pending', 0,
                (SELECT traceparent FROM notices WHERE notice_id = :unreached),
                (SELECT tracestate FROM notices WHERE notice_id = :unreached))
        ON CONFLICT DO NOTHING
        RETURNING notice_id)
    SELECT pg_notify(:wake, '') FROM queued WHERE :wake <> ''
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
    channel: str = "email"  # the channel that did not reach them


def fallback_notice_id(notice_id: str, channel: str) -> str:
    """The id of a notice's fallback on ``channel``: deterministic, so a repeat queues nothing."""
    return str(uuid.uuid5(NOTICE_NAMESPACE, f"{notice_id}\x1f{channel}"))


async def queue_fallback(
    session: AsyncSession,
    notice: Unreached,
    *,
    sms_available: bool,
    letters_available: bool = False,
) -> str | None:
    """Queue the next channel's notice if the policy allows one; its id, or None."""
    postal, letter_opt_out = False, False
    if letters_available:
        row = (await session.execute(_POSTAL, {"id": notice.recipient_customer_id})).first()
        if row is not None:
            postal, letter_opt_out = bool(row.postal), bool(row.letter_opt_out)
    channel = fallback_channel(
        channel=notice.channel,
        severity=notice.severity,
        kind=notice.kind,
        phone=notice.phone,
        sms_opt_out=notice.sms_opt_out,
        sms_available=sms_available,
        postal=postal,
        letter_opt_out=letter_opt_out,
        letters_available=letters_available,
    )
    if channel is None:
        return None
    fallback_id = fallback_notice_id(notice.notice_id, channel)
    await session.execute(
        _QUEUE,
        {
            "id": fallback_id,
            "unreached": notice.notice_id,
            "alert_id": notice.alert_id,
            "customer_id": notice.customer_id,
            "recipient": notice.recipient_customer_id,
            "role": notice.recipient_role,
            "kind": notice.kind,
            "version": notice.alert_version,
            "reminder_no": notice.reminder_no,
            "channel": channel,
            "wake": _WAKE[channel],
        },
    )
    return fallback_id
