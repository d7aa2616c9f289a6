"""notifier's consumers: contacts from customers.v1; alerts from alerts.v1 become notices to send;
remedies.v1 (a remedy chosen, 'not affected') stops the reminders; a remedy case's waits start the
reminders until it is complete (remedy_reminders.py), and its label, refund or replacement is told
by email (remedy_notices.py).

``alert.raised.v1`` and ``alert.updated.v1`` are applied in bulk (:data:`on_alert_events`, a batch
handler): a run of them costs three statements however long it is. ``on_alert_raised`` and
``on_alert_updated`` are their one-event form, the reference the bulk form is tested against.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from notifier import remedy_notices, remedy_reminders
from notifier.domain import (
    AlertEvent,
    gift_recipients,
    material_changes,
    plan_alert_events,
    recipients,
)
from notifier.letter_returns import undeliverable_unless_moved
from notifier.models import AlertResponse, Contact, KnownAlert, Notice, Reminder
from notifier.notice_traces import remember_trace, remember_traces
from recall_shared import events as ev
from recall_shared.envelope import Envelope
from recall_shared.handlers import Delivery, HandlerMap, batched
from recall_shared.shared_parts import alert_state_json

NOTICE_NAMESPACE = uuid.UUID("0b8f7d2e-9c4a-4f51-8e0e-5a3c1d9b7e21")
SENDER_CHANNEL = "notices_notifier"


def notice_id_for(
    alert_id: str, kind: str, alert_version: int, recipient_customer_id: str, reminder_no: int = 0
) -> str:
    key = f"{alert_id}\x1f{kind}\x1f{alert_version}\x1f{recipient_customer_id}"
    if reminder_no:
        key += f"\x1f{reminder_no}"
    return str(uuid.uuid5(NOTICE_NAMESPACE, key))


def message_id_for(notice_id: str) -> str:
    """The Message-ID of a notice: the same on every attempt, so a re-send after a crash is
    recognisable."""
    return f"<{notice_id}@recall-alerts.notices>"


async def wake_sender(session: AsyncSession) -> None:
    await session.execute(text("SELECT pg_notify(:ch, '')"), {"ch": SENDER_CHANNEL})


# A notice decides "pending" or "waiting_contact" from the recipient's contact, and a contact
# update releases the waiting notices: two transactions (alerts.v1 and customers.v1 partitions,
# possibly on two instances) that must not miss each other under READ COMMITTED. Queuing takes a
# shared lock per recipient, a contact update the exclusive one, so one always sees the other.
_LOCK_CONTACTS_SHARED = text(
    "SELECT pg_advisory_xact_lock_shared(k) FROM ("
    "SELECT DISTINCT hashtextextended('notifier.contact:' || r, 0) AS k "
    "FROM unnest(CAST(:ids AS text[])) r ORDER BY k) s"
)
_LOCK_CONTACT = text(
    "SELECT pg_advisory_xact_lock(hashtextextended('notifier.contact:' || :id, 0))"
)


async def lock_recipients(session: AsyncSession, recipient_ids: Sequence[str]) -> None:
    """Hold the recipients' contacts steady until this transaction ends (see above)."""
    if recipient_ids:
        await session.execute(_LOCK_CONTACTS_SHARED, {"ids": list(recipient_ids)})


async def _has_address(session: AsyncSession, customer_id: str) -> bool:
    contact = await session.get(Contact, customer_id)
    # A phone or a postal address counts too: the sender falls back to SMS or a letter where the
    # policy allows (notifier.fallback).
    return contact is not None and bool(
        contact.safety_email or contact.email or contact.phone or contact.postal_address
    )


async def queue_notice(
    session: AsyncSession,
    *,
    alert_id: str,
    customer_id: str,
    recipient_customer_id: str,
    role: str,
    kind: str,
    alert_version: int,
    reminder_no: int = 0,
) -> bool:
    """One notice per (alert, kind, version, recipient, reminder number): a redelivered alert queues
    nothing new. Without a contact yet, the notice waits for it; it is never dropped. True when
    queued now."""
    await lock_recipients(session, [recipient_customer_id])
    status = "pending" if await _has_address(session, recipient_customer_id) else "waiting_contact"
    stmt = (
        insert(Notice)
        .values(
            notice_id=notice_id_for(
                alert_id, kind, alert_version, recipient_customer_id, reminder_no
            ),
            alert_id=alert_id,
            customer_id=customer_id,
            recipient_customer_id=recipient_customer_id,
            recipient_role=role,
            kind=kind,
            alert_version=alert_version,
            reminder_no=reminder_no,
            status=status,
            attempts=0,
        )
        .on_conflict_do_nothing()
        .returning(Notice.notice_id)
    )
    queued = (await session.execute(stmt)).first() is not None
    if queued and status == "pending":
        await wake_sender(session)
    return queued


async def stop_reminders(session: AsyncSession, alert_id: str, reason: str) -> None:
    """No more reminders for this alert; a reminder queued but not yet sent is cancelled."""
    await session.execute(
        update(Reminder)
        .where(Reminder.alert_id == alert_id, Reminder.next_due_at.is_not(None))
        .values(next_due_at=None, stopped_reason=reason)
    )
    await session.execute(
        update(Notice)
        .where(
            Notice.alert_id == alert_id,
            Notice.kind == "reminder",
            Notice.reminder_no < remedy_reminders.REMEDY_REMINDER_FIRST,  # not a remedy's own
            Notice.status.in_(("pending", "waiting_contact")),
        )
        .values(status="cancelled", last_error=f"reminders stopped: {reason}")
    )


async def _store_alert(session: AsyncSession, state: ev.AlertState, status: str = "open") -> bool:
    """Keep the newest state; False when this event is older than what we hold."""
    current = await session.get(KnownAlert, state.alert_id, with_for_update=True)
    if current is not None and current.alert_version > state.alert_version:
        return False
    values = {
        "alert_id": state.alert_id,
        "customer_id": state.customer_id,
        "alert_version": state.alert_version,
        "status": status,
        "state": state.model_dump(mode="json"),
    }
    stmt = insert(KnownAlert).values(**values)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["alert_id"], set_={k: stmt.excluded[k] for k in values}
        )
    )
    return True


async def store_gift_contacts(session: AsyncSession, states: Sequence[ev.AlertState]) -> None:
    """The contacts of gift recipients, as the orders gave them (they are no customers of ours, so
    customers.v1 never speaks of them): kept like a customer's, under their recipient id, so their
    notices are queued, sent and fall back like any other. The newest alert state's wins."""
    values: dict[str, dict[str, object]] = {}
    for state in states:
        for rid, r in gift_recipients(state).items():
            values[rid] = {
                "customer_id": rid,
                "name": r.name,
                "email": r.email,
                "phone": r.phone,
                "locale": r.locale,
                "postal_address": (
                    r.postal_address.model_dump(mode="json") if r.postal_address else None
                ),
            }
    if not values:
        return
    stmt = insert(Contact).values(list(values.values()))
    kept = ("name", "email", "phone", "locale", "postal_address")
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["customer_id"],
            set_={
                **{k: stmt.excluded[k] for k in kept},
                "postal_undeliverable_at": undeliverable_unless_moved(stmt.excluded),
            },
        )
    )


async def _queue_for_alert(session: AsyncSession, state: ev.AlertState, kind: str) -> None:
    await store_gift_contacts(session, [state])
    for role, recipient in recipients(state):
        await queue_notice(
            session,
            alert_id=state.alert_id,
            customer_id=state.customer_id,
            recipient_customer_id=recipient,
            role=role,
            kind=kind,
            alert_version=state.alert_version,
        )


async def on_alert_raised(session: AsyncSession, event: ev.AlertRaised, env: Envelope) -> None:
    first = await session.get(KnownAlert, event.alert.alert_id) is None
    if await _store_alert(session, event.alert):
        initial = first or event.alert.alert_version == 1
        await _queue_for_alert(session, event.alert, "initial" if initial else "update")


async def on_alert_updated(session: AsyncSession, event: ev.AlertUpdated, env: Envelope) -> None:
    current = await session.get(KnownAlert, event.alert.alert_id)
    if current is None:  # its raise never arrived: nobody was told yet
        if await _store_alert(session, event.alert):
            await _queue_for_alert(session, event.alert, "initial")
        return
    scope_changed = current.alert_version < event.alert.alert_version
    before = ev.AlertState.model_validate(current.state).recall
    same_version = current.alert_version == event.alert.alert_version
    if await _store_alert(session, event.alert):
        if scope_changed:
            await _queue_for_alert(session, event.alert, "update")
        elif same_version and material_changes(before, event.alert.recall):
            await _queue_amendment(session, event.alert)


async def _queue_amendment(session: AsyncSession, state: ev.AlertState) -> None:
    """A material amendment of the version held (notifier.domain.material_changes), told once per
    recall version to those still affected (not to who said their unit is not)."""
    response = await session.get(AlertResponse, state.alert_id)
    if response is not None and response.response == "not_affected":
        return
    for role, recipient in recipients(state):
        await queue_notice(
            session,
            alert_id=state.alert_id,
            customer_id=state.customer_id,
            recipient_customer_id=recipient,
            role=role,
            kind="amendment",
            alert_version=state.alert_version,
            reminder_no=state.recall_version,
        )


_LOCK_KNOWN = text(
    "SELECT alert_id, alert_version FROM alerts WHERE alert_id = ANY(CAST(:ids AS text[])) "
    "ORDER BY alert_id FOR UPDATE"
)
# The recall content held, read only for alerts whose version an update repeats (an amendment).
_HELD_RECALLS = text(
    "SELECT alert_id, state -> 'recall' AS recall FROM alerts "
    "WHERE alert_id = ANY(CAST(:ids AS text[]))"
)
_UPSERT_ALERTS = text(
    """
    INSERT INTO alerts (alert_id, customer_id, alert_version, status, state)
    SELECT v.alert_id, v.customer_id, v.alert_version, 'open', CAST(v.state AS jsonb)
    FROM unnest(CAST(:ids AS text[]), CAST(:customers AS text[]), CAST(:versions AS int[]),
                CAST(:states AS text[])) AS v(alert_id, customer_id, alert_version, state)
    ON CONFLICT (alert_id) DO UPDATE SET customer_id = excluded.customer_id,
        alert_version = excluded.alert_version, status = excluded.status, state = excluded.state
    """
)
# One statement: the recipients' contacts looked up, the notices inserted (a repeat is a no-op on
# the unique key), and the sender woken once if any of them can be sent now.
_QUEUE_NOTICES = text(
    """
    WITH queued AS (
        INSERT INTO notices (notice_id, alert_id, customer_id, recipient_customer_id,
                             recipient_role, kind, alert_version, reminder_no, status, attempts)
        SELECT v.notice_id, v.alert_id, v.customer_id, v.recipient, v.role, v.kind, v.alert_version,
               v.reminder_no,
               CASE WHEN coalesce(c.safety_email, '') <> '' OR coalesce(c.email, '') <> ''
                         OR coalesce(c.phone, '') <> '' OR c.postal_address IS NOT NULL
                    THEN 'pending' ELSE 'waiting_contact' END, 0
        FROM unnest(CAST(:ids AS text[]), CAST(:alert_ids AS text[]), CAST(:customers AS text[]),
                    CAST(:recipients AS text[]), CAST(:roles AS text[]), CAST(:kinds AS text[]),
                    CAST(:versions AS int[]), CAST(:numbers AS int[]))
             AS v(notice_id, alert_id, customer_id, recipient, role, kind, alert_version,
                  reminder_no)
        LEFT JOIN contacts c ON c.customer_id = v.recipient
        -- an amendment goes to those still affected: not to who said their unit is not
        WHERE v.kind <> 'amendment' OR NOT EXISTS (
            SELECT 1 FROM alert_responses r
            WHERE r.alert_id = v.alert_id AND r.response = 'not_affected')
        ON CONFLICT DO NOTHING
        RETURNING status)
    SELECT pg_notify(:channel, '') FROM (SELECT 1 FROM queued WHERE status = 'pending' LIMIT 1) p
    """
)


async def apply_alert_events(
    session: AsyncSession, deliveries: Sequence[Delivery[AlertEvent]]
) -> None:
    """A run of raised/updated alerts in bulk, with the effects of the one-event handlers applied in
    order: the versions held are locked and read in one query, the newest state per alert upserted
    in one statement, the notices queued in one (see ``_QUEUE_NOTICES``)."""
    events = [d.event for d in deliveries]
    ids = sorted({e.alert.alert_id for e in events})
    known = {r.alert_id: r.alert_version for r in await session.execute(_LOCK_KNOWN, {"ids": ids})}
    plan = plan_alert_events(known, events, await _held_recalls(session, known, events))
    if plan.stored:
        states = list(plan.stored.values())
        await session.execute(
            _UPSERT_ALERTS,
            {
                "ids": [s.alert_id for s in states],
                "customers": [s.customer_id for s in states],
                "versions": [s.alert_version for s in states],
                "states": [alert_state_json(s) for s in states],
            },
        )
    if plan.notices:
        ns = plan.notices
        if any(n.role == "gift_recipient" for n in ns):
            await store_gift_contacts(session, [e.alert for e in events])
        await lock_recipients(session, [n.recipient_customer_id for n in ns])
        await session.execute(
            _QUEUE_NOTICES,
            {
                "ids": [
                    notice_id_for(
                        n.alert_id, n.kind, n.alert_version, n.recipient_customer_id, n.number
                    )
                    for n in ns
                ],
                "alert_ids": [n.alert_id for n in ns],
                "customers": [n.customer_id for n in ns],
                "recipients": [n.recipient_customer_id for n in ns],
                "roles": [n.role for n in ns],
                "kinds": [n.kind for n in ns],
                "versions": [n.alert_version for n in ns],
                "numbers": [n.number for n in ns],
                "channel": SENDER_CHANNEL,
            },
        )
        # Their sends join the events' traces (notifier.notice_traces).
        queued_by = [
            (d.event.alert.alert_id, d.event.alert.alert_version, d.envelope) for d in deliveries
        ]
        await remember_traces(session, queued_by)


async def _held_recalls(
    session: AsyncSession, known: dict[str, int], events: Sequence[AlertEvent]
) -> dict[str, ev.RecallContent]:
    """The recall content held for the alerts an update of the same version may amend (none in
    most runs: then no query)."""
    ids = sorted(
        {
            e.alert.alert_id
            for e in events
            if isinstance(e, ev.AlertUpdated)
            and known.get(e.alert.alert_id) == e.alert.alert_version
        }
    )
    if not ids:
        return {}
    rows = await session.execute(_HELD_RECALLS, {"ids": ids})
    return {r.alert_id: ev.RecallContent.model_validate(r.recall) for r in rows}


on_alert_events = batched(apply_alert_events)
"""The consumer's entry for both alert.raised.v1 and alert.updated.v1 (one object, so a run mixing
them is one call)."""


async def on_alert_withdrawn(
    session: AsyncSession, event: ev.AlertWithdrawn, env: Envelope
) -> None:
    current = await session.get(KnownAlert, event.alert_id, with_for_update=True)
    if current is None or current.alert_version >= event.alert_version:
        return  # never told them, or already handled: nothing to withdraw
    # Pending notices of the earlier versions must not go out after the withdrawal.
    await session.execute(
        update(Notice)
        .where(Notice.alert_id == event.alert_id, Notice.status.in_(("pending", "waiting_contact")))
        .values(status="cancelled", last_error="alert withdrawn")
    )
    # 'sending': the notice is in flight or its delivery is in doubt after a crash; either way the
    # customer may have been told, so they are told of the withdrawal too (the sender does not
    # re-send it: the alert is withdrawn by then).
    told = await session.scalar(
        select(Notice.notice_id)
        .where(
            Notice.alert_id == event.alert_id,
            Notice.kind != "withdrawal",
            Notice.status.in_(("sent", "sending")),
        )
        .limit(1)
    )
    await stop_reminders(session, event.alert_id, "withdrawn")
    await remedy_reminders.stop_cases_of_alert(session, event.alert_id, "withdrawn")
    current.status = "withdrawn"
    current.alert_version = event.alert_version
    if told:
        state = ev.AlertState.model_validate(current.state)
        for role, recipient in recipients(state):  # a gift's recipient too (issue 15)
            await queue_notice(
                session,
                alert_id=event.alert_id,
                customer_id=state.customer_id,
                recipient_customer_id=recipient,
                role=role,
                kind="withdrawal",
                alert_version=event.alert_version,
            )
        await remember_traces(session, [(event.alert_id, event.alert_version, env)])


async def on_alert_closed(session: AsyncSession, event: ev.AlertClosed, env: Envelope) -> None:
    await session.execute(
        update(KnownAlert).where(KnownAlert.alert_id == event.alert_id).values(status="closed")
    )
    await stop_reminders(session, event.alert_id, "closed")
    await remedy_reminders.stop_cases_of_alert(session, event.alert_id, "closed")


async def _responded(
    session: AsyncSession, alert_id: str, customer_id: str, response: str, at: object
) -> None:
    """The customer acted on the alert: remembered even before the alert itself arrives (the topics
    are not ordered with each other), and any reminder schedule stops."""
    await session.execute(
        insert(AlertResponse)
        .values(alert_id=alert_id, customer_id=customer_id, response=response, responded_at=at)
        .on_conflict_do_nothing()
    )
    await stop_reminders(session, alert_id, response)


async def on_remedy_requested(
    session: AsyncSession, event: ev.RemedyRequested, env: Envelope
) -> None:
    await _responded(
        session, event.alert_id, event.customer_id, "remedy_requested", event.requested_at
    )


async def on_not_affected(
    session: AsyncSession, event: ev.NotAffectedDeclared, env: Envelope
) -> None:
    await _responded(session, event.alert_id, event.customer_id, "not_affected", event.declared_at)
    await remedy_reminders.stop_cases_of_alert(session, event.alert_id, "not_affected")


async def on_remedy_case(
    session: AsyncSession, event: ev.RemedyCaseTransitioned, env: Envelope
) -> None:
    # A case exists only because the customer chose a remedy (the request may be on another
    # partition's history or compacted away): that is a response.
    await _responded(session, event.alert_id, event.customer_id, "remedy_case", event.occurred_at)
    await remedy_reminders.track_case(
        session,
        case_id=event.case_id,
        alert_id=event.alert_id,
        customer_id=event.customer_id,
        state=event.state,
        waiting_for=event.waiting_for,
        at=event.occurred_at,
    )
    notice_id = await queue_remedy_notice(session, event)
    if notice_id is not None:
        await remember_trace(session, notice_id, env)  # its send joins the case's trace


async def on_remedy_progressed(
    session: AsyncSession, event: ev.RemedyCaseProgressed, env: Envelope
) -> None:
    """A photo held for review pauses the reminders; a rejected one asks again (a new wait)."""
    await remedy_reminders.track_case(
        session,
        case_id=event.case_id,
        alert_id=event.alert_id,
        customer_id=event.customer_id,
        state=event.state,
        waiting_for=event.waiting_for,
        at=event.occurred_at,
    )


# --------------------------------------------------------------------------- remedy notices
# The label, the refund confirmation, the replacement's dispatch (issue 14, remedy_notices.py).


async def queue_remedy_notice(
    session: AsyncSession, event: ev.RemedyCaseTransitioned
) -> str | None:
    """The notice a case's transition calls for, queued like any notice (a repeat is a no-op);
    its id, or None when the transition calls for none."""
    draft = remedy_notices.notice_for(event)
    if draft is None:
        return None
    await queue_notice(
        session,
        alert_id=draft.alert_id,
        customer_id=draft.customer_id,
        recipient_customer_id=draft.customer_id,
        role="purchaser",
        kind=draft.kind,
        alert_version=remedy_notices.REMEDY_NOTICE_VERSION,
    )
    notice_id = notice_id_for(
        draft.alert_id, draft.kind, remedy_notices.REMEDY_NOTICE_VERSION, draft.customer_id
    )
    await remedy_notices.store_details(session, notice_id, draft)
    return notice_id


async def on_customer_updated(
    session: AsyncSession, event: ev.CustomerUpdated, env: Envelope
) -> None:
    values = {
        "customer_id": event.customer_id,
        "name": event.name,
        "email": event.email,
        "safety_email": event.safety_email,
        "locale": event.locale,
        "phone": event.phone,
        "sms_opt_out": event.sms_opt_out,
        "postal_address": (
            event.postal_address.model_dump(mode="json") if event.postal_address else None
        ),
        "letter_opt_out": event.letter_opt_out,
    }
    await session.execute(_LOCK_CONTACT, {"id": event.customer_id})
    stmt = insert(Contact).values(**values)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["customer_id"],
            set_={
                **{k: stmt.excluded[k] for k in values},
                # A letter came back: not written to again until the address changes.
                "postal_undeliverable_at": undeliverable_unless_moved(stmt.excluded),
            },
        )
    )
    if event.safety_email or event.email or event.phone or event.postal_address:
        result = await session.execute(
            update(Notice)
            .where(
                Notice.recipient_customer_id == event.customer_id,
                Notice.status == "waiting_contact",
            )
            # Due now: a notice claimed before it was held keeps the claim's lease otherwise.
            .values(status="pending", next_attempt_at=func.now())
            .returning(Notice.notice_id)
        )
        if result.first() is not None:
            await wake_sender(session)


HANDLERS: HandlerMap = {
    ev.AlertRaised: on_alert_events,
    ev.AlertUpdated: on_alert_events,
    ev.AlertWithdrawn: on_alert_withdrawn,
    ev.AlertClosed: on_alert_closed,
    ev.CustomerUpdated: on_customer_updated,
    ev.RemedyRequested: on_remedy_requested,
    ev.NotAffectedDeclared: on_not_affected,
    ev.RemedyCaseTransitioned: on_remedy_case,
    ev.RemedyCaseProgressed: on_remedy_progressed,
}
