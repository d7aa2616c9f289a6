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
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from notifier.domain import fallback_channel
from notifier.handlers import NOTICE_NAMESPACE

SMS_SENDER_CHANNEL = "notices_notifier_sms"
# Queued letters wait for the daily batch (letter_batch.py); nothing to wake.
_WAKE = {"sms": SMS_SENDER_CHANNEL, "letter": ""}
_POSTAL = text(
    "SELECT customer_id, postal_address IS NOT NULL AND postal_undeliverable_at IS NULL AS postal, "
    "letter_opt_out FROM contacts "
    "WHERE customer_id = ANY(CAST(:ids AS text[]))"
)

# Every fallback of a batch in one statement (the email sender holds a whole claim of notices
# without an address in one group commit): one round trip, not one per notice.
_QUEUE = text(
    """
    WITH v AS (
        SELECT * FROM unnest(CAST(:ids AS text[]), CAST(:unreached AS text[]),
                             CAST(:alert_ids AS text[]), CAST(:customers AS text[]),
                             CAST(:recipients AS text[]), CAST(:roles AS text[]),
                             CAST(:kinds AS text[]), CAST(:versions AS int[]),
                             CAST(:reminder_nos AS int[]), CAST(:channels AS text[]))
            AS v(notice_id, unreached, alert_id, customer_id, recipient, role, kind, version,
                 reminder_no, channel)),
    queued AS (
        INSERT INTO notices (notice_id, alert_id, customer_id, recipient_customer_id,
                             recipient_role, kind, alert_version, reminder_no, channel, status,
                             attempts, traceparent, tracestate)
        SELECT v.notice_id, v.alert_id, v.customer_id, v.recipient, v.role, v.kind, v.version,
               v.reminder_no, v.channel, 'pending', 0, u.traceparent, u.tracestate
        FROM v LEFT JOIN notices u ON u.notice_id = v.unreached
        ON CONFLICT DO NOTHING
        RETURNING notice_id, channel)
    SELECT notice_id, channel FROM queued
    """
)
_NOTIFY = text("SELECT pg_notify(:wake, '')")


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

    @classmethod
    def of(cls, row: Any, **given: Any) -> Unreached:
        """From a notice row with these columns (the senders', the delivery reports', the
        unconfirmed scan's); ``given`` for what the row does not say. No channel: email."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name in given:
                values[f.name] = given[f.name]
            elif f.name == "channel":
                values[f.name] = getattr(row, "channel", None) or "email"
            else:
                values[f.name] = getattr(row, f.name)
        values["sms_opt_out"] = bool(values["sms_opt_out"])
        return cls(**values)


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
    queued = await queue_fallbacks(
        session, [notice], sms_available=sms_available, letters_available=letters_available
    )
    return queued[0]


async def queue_fallbacks(
    session: AsyncSession,
    notices: list[Unreached],
    *,
    sms_available: bool,
    letters_available: bool = False,
) -> list[str | None]:
    """Queue, for each notice, the next channel's notice if the policy allows one, all in one
    statement (and one wake-up per channel); their ids in the same order (None: no fallback)."""
    postal: dict[str, tuple[bool, bool]] = {}
    if letters_available and notices:
        ids = sorted({n.recipient_customer_id for n in notices})
        rows = (await session.execute(_POSTAL, {"ids": ids})).all()
        postal = {r.customer_id: (bool(r.postal), bool(r.letter_opt_out)) for r in rows}
    chosen: list[tuple[Unreached, str, str]] = []
    ids_out: list[str | None] = []
    for notice in notices:
        has_postal, letter_opt_out = postal.get(notice.recipient_customer_id, (False, False))
        channel = fallback_channel(
            channel=notice.channel,
            severity=notice.severity,
            kind=notice.kind,
            phone=notice.phone,
            sms_opt_out=notice.sms_opt_out,
            sms_available=sms_available,
            postal=has_postal,
            letter_opt_out=letter_opt_out,
            letters_available=letters_available,
        )
        if channel is None:
            ids_out.append(None)
            continue
        fallback_id = fallback_notice_id(notice.notice_id, channel)
        chosen.append((notice, channel, fallback_id))
        ids_out.append(fallback_id)
    if not chosen:
        return ids_out
    queued = await session.execute(
        _QUEUE,
        {
            "ids": [f for _, _, f in chosen],
            "unreached": [n.notice_id for n, _, _ in chosen],
            "alert_ids": [n.alert_id for n, _, _ in chosen],
            "customers": [n.customer_id for n, _, _ in chosen],
            "recipients": [n.recipient_customer_id for n, _, _ in chosen],
            "roles": [n.recipient_role for n, _, _ in chosen],
            "kinds": [n.kind for n, _, _ in chosen],
            "versions": [n.alert_version for n, _, _ in chosen],
            "reminder_nos": [n.reminder_no for n, _, _ in chosen],
            "channels": [c for _, c, _ in chosen],
        },
    )
    for wake in sorted({_WAKE[r.channel] for r in queued} - {""}):
        await session.execute(_NOTIFY, {"wake": wake})
    return ids_out
