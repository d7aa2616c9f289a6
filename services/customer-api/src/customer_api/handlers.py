"""customer-api's consumers: the read model from alerts.v1, remedies.v1 and notifications.v1."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from customer_api.models import CustomerAlert, RemedyRequest, SentNotice
from recall_shared import events as ev
from recall_shared.envelope import Envelope
from recall_shared.remedy_states import COMPLETED_CASE_STATES

SEVERITY_RANK = {"critical": 0, "high": 1, "medium": 2, "low": 3}
FINAL_CASE_STATES = COMPLETED_CASE_STATES  # the remedy was delivered (recall_shared.remedy_states)


async def _upsert_alert(session: AsyncSession, state: ev.AlertState) -> None:
    values = {
        "alert_id": state.alert_id,
        "customer_id": state.customer_id,
        "recall_id": state.recall_id,
        "alert_version": state.alert_version,
        "status": "open",
        "severity_rank": SEVERITY_RANK[state.recall.severity],
        "state": state.model_dump(mode="json"),
        "updated_at": datetime.now(UTC),
    }
    stmt = insert(CustomerAlert).values(**values)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["alert_id"],
            set_={k: stmt.excluded[k] for k in values if k not in ("alert_id", "customer_id")},
            # Events of one customer arrive in order, but a replay must never roll the state back.
            where=CustomerAlert.alert_version <= stmt.excluded.alert_version,
        )
    )


async def on_alert_raised(session: AsyncSession, event: ev.AlertRaised, env: Envelope) -> None:
    await _upsert_alert(session, event.alert)


async def on_alert_updated(session: AsyncSession, event: ev.AlertUpdated, env: Envelope) -> None:
    await _upsert_alert(session, event.alert)


async def on_alert_withdrawn(
    session: AsyncSession, event: ev.AlertWithdrawn, env: Envelope
) -> None:
    await session.execute(
        update(CustomerAlert)
        .where(
            CustomerAlert.alert_id == event.alert_id,
            CustomerAlert.alert_version < event.alert_version,
        )
        .values(status="withdrawn", alert_version=event.alert_version, updated_at=datetime.now(UTC))
    )


async def on_alert_closed(session: AsyncSession, event: ev.AlertClosed, env: Envelope) -> None:
    await session.execute(
        update(CustomerAlert)
        .where(CustomerAlert.alert_id == event.alert_id)
        .values(status="closed", updated_at=datetime.now(UTC))
    )


async def on_case_transitioned(
    session: AsyncSession, event: ev.RemedyCaseTransitioned, env: Envelope
) -> None:
    await session.execute(
        update(RemedyRequest)
        .where(RemedyRequest.request_id == event.request_id)
        .values(
            case_id=event.case_id,
            case_state=event.state,
            refunded_amount=event.refunded_amount,
            currency=event.currency,
            reason=event.reason,
            updated_at=event.occurred_at,
        )
    )
    if event.state in FINAL_CASE_STATES:
        await session.execute(
            update(CustomerAlert)
            .where(CustomerAlert.alert_id == event.alert_id)
            .values(resolution="remedied")
        )


async def _notice(
    session: AsyncSession, event: ev.NoticeSent | ev.NoticeFailed, status: str, at: datetime
) -> None:
    stmt = insert(SentNotice).values(
        notice_id=event.notice_id,
        alert_id=event.alert_id,
        customer_id=event.customer_id,
        kind=event.kind,
        status=status,
        at=at,
    )
    await session.execute(
        stmt.on_conflict_do_update(index_elements=["notice_id"], set_={"status": status, "at": at})
    )


async def on_notice_sent(session: AsyncSession, event: ev.NoticeSent, env: Envelope) -> None:
    await _notice(session, event, "sent", event.sent_at)


async def on_notice_failed(session: AsyncSession, event: ev.NoticeFailed, env: Envelope) -> None:
    await _notice(session, event, "failed", event.failed_at)


HANDLERS = {
    ev.AlertRaised: on_alert_raised,
    ev.AlertUpdated: on_alert_updated,
    ev.AlertWithdrawn: on_alert_withdrawn,
    ev.AlertClosed: on_alert_closed,
    ev.RemedyCaseTransitioned: on_case_transitioned,
    ev.NoticeSent: on_notice_sent,
    ev.NoticeFailed: on_notice_failed,
}
