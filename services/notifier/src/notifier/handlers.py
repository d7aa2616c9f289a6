"""notifier's consumers: contacts from customers.v1; alerts from alerts.v1 become notices to send."""

from __future__ import annotations

import uuid

from sqlalchemy import select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from notifier.models import Contact, KnownAlert, Notice
from recall_shared import events as ev
from recall_shared.envelope import Envelope

NOTICE_NAMESPACE = uuid.UUID("0b8f7d2e-9c4a-4f51-8e0e-5a3c1d9b7e21")
SENDER_CHANNEL = "notices_notifier"


def notice_id_for(alert_id: str, kind: str, alert_version: int, recipient_customer_id: str) -> str:
    return str(uuid.uuid5(NOTICE_NAMESPACE, f"{alert_id}\x1f{kind}\x1f{alert_version}\x1f{recipient_customer_id}"))


async def wake_sender(session: AsyncSession) -> None:
    await session.execute(text("SELECT pg_notify(:ch, '')"), {"ch": SENDER_CHANNEL})


async def _has_address(session: AsyncSession, customer_id: str) -> bool:
    contact = await session.get(Contact, customer_id)
    return contact is not None and bool(contact.safety_email or contact.email)


async def queue_notice(
    session: AsyncSession, *, alert_id: str, customer_id: str, recipient_customer_id: str, role: str, kind: str,
    alert_version: int,
) -> None:
    """One notice per (alert, kind, version, recipient): a redelivered alert queues nothing new.
    Without a contact yet, the notice waits for it; it is never dropped."""
    status = "pending" if await _has_address(session, recipient_customer_id) else "waiting_contact"
    stmt = insert(Notice).values(
        notice_id=notice_id_for(alert_id, kind, alert_version, recipient_customer_id), alert_id=alert_id,
        customer_id=customer_id, recipient_customer_id=recipient_customer_id, recipient_role=role, kind=kind,
        alert_version=alert_version, status=status, attempts=0,
    ).on_conflict_do_nothing()
    await session.execute(stmt)
    if status == "pending":
        await wake_sender(session)


async def _store_alert(session: AsyncSession, state: ev.AlertState, status: str = "open") -> bool:
    """Keep the newest state; False when this event is older than what we hold."""
    current = await session.get(KnownAlert, state.alert_id, with_for_update=True)
    if current is not None and current.alert_version > state.alert_version:
        return False
    values = {"alert_id": state.alert_id, "customer_id": state.customer_id, "alert_version": state.alert_version,
              "status": status, "state": state.model_dump(mode="json")}
    stmt = insert(KnownAlert).values(**values)
    await session.execute(stmt.on_conflict_do_update(index_elements=["alert_id"], set_={k: stmt.excluded[k] for k in values}))
    return True


async def _queue_for_alert(session: AsyncSession, state: ev.AlertState, kind: str) -> None:
    await queue_notice(session, alert_id=state.alert_id, customer_id=state.customer_id,
                       recipient_customer_id=state.customer_id, role="purchaser", kind=kind,
                       alert_version=state.alert_version)
    admin = state.business_account_admin_id
    if admin and admin != state.customer_id:
        await queue_notice(session, alert_id=state.alert_id, customer_id=state.customer_id,
                           recipient_customer_id=admin, role="account_admin", kind=kind,
                           alert_version=state.alert_version)


async def on_alert_raised(session: AsyncSession, event: ev.AlertRaised, env: Envelope) -> None:
    if await _store_alert(session, event.alert):
        await _queue_for_alert(session, event.alert, "initial" if event.alert.alert_version == 1 else "update")


async def on_alert_updated(session: AsyncSession, event: ev.AlertUpdated, env: Envelope) -> None:
    current = await session.get(KnownAlert, event.alert.alert_id)
    scope_changed = current is None or current.alert_version < event.alert.alert_version
    if await _store_alert(session, event.alert) and scope_changed:
        await _queue_for_alert(session, event.alert, "update")


async def on_alert_withdrawn(session: AsyncSession, event: ev.AlertWithdrawn, env: Envelope) -> None:
    current = await session.get(KnownAlert, event.alert_id, with_for_update=True)
    if current is None or current.alert_version >= event.alert_version:
        return  # never told them, or already handled: nothing to withdraw
    # Pending notices of the earlier versions must not go out after the withdrawal.
    await session.execute(
        update(Notice)
        .where(Notice.alert_id == event.alert_id, Notice.status.in_(("pending", "waiting_contact")))
        .values(status="cancelled", last_error="alert withdrawn")
    )
    told = await session.scalar(
        select(Notice.notice_id).where(Notice.alert_id == event.alert_id, Notice.status == "sent").limit(1)
    )
    current.status = "withdrawn"
    current.alert_version = event.alert_version
    if told:
        state = ev.AlertState.model_validate(current.state)
        for role, recipient in (("purchaser", state.customer_id), ("account_admin", state.business_account_admin_id)):
            if recipient and (role == "purchaser" or recipient != state.customer_id):
                await queue_notice(session, alert_id=event.alert_id, customer_id=state.customer_id,
                                   recipient_customer_id=recipient, role=role, kind="withdrawal",
                                   alert_version=event.alert_version)


async def on_alert_closed(session: AsyncSession, event: ev.AlertClosed, env: Envelope) -> None:
    await session.execute(update(KnownAlert).where(KnownAlert.alert_id == event.alert_id).values(status="closed"))


async def on_customer_updated(session: AsyncSession, event: ev.CustomerUpdated, env: Envelope) -> None:
    values = {"customer_id": event.customer_id, "name": event.name, "email": event.email,
              "safety_email": event.safety_email, "locale": event.locale}
    stmt = insert(Contact).values(**values)
    await session.execute(stmt.on_conflict_do_update(index_elements=["customer_id"], set_={k: stmt.excluded[k] for k in values}))
    if event.safety_email or event.email:
        result = await session.execute(
            update(Notice)
            .where(Notice.recipient_customer_id == event.customer_id, Notice.status == "waiting_contact")
            .values(status="pending")
            .returning(Notice.notice_id)
        )
        if result.first() is not None:
            await wake_sender(session)


HANDLERS = {
    ev.AlertRaised: on_alert_raised,
    ev.AlertUpdated: on_alert_updated,
    ev.AlertWithdrawn: on_alert_withdrawn,
    ev.AlertClosed: on_alert_closed,
    ev.CustomerUpdated: on_customer_updated,
}
