"""recalls.v1 into the public pages' read model (``public_recalls``): the latest version of every
published recall, and whether it was closed or withdrawn (recall.closed.v1 with ``withdrawn``), and
why. Nothing of any customer is stored here."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, or_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from customer_api.models import PublicRecall
from customer_api.public_view import ENDED
from recall_shared import events as ev
from recall_shared.envelope import Envelope
from recall_shared.handlers import HandlerMap


async def _store(
    session: AsyncSession,
    recall: ev.RecallSnapshot,
    status: str,
    at: datetime,
    closed: datetime | None,
    reason: str = "",
) -> None:
    stmt = insert(PublicRecall).values(
        recall_id=recall.recall_id,
        version=recall.version,
        status=status,
        snapshot=recall.model_dump(mode="json"),
        published_at=recall.published_at,
        updated_at=at,
        closed_at=closed,
        close_reason=reason,
    )
    table = PublicRecall.__table__.c
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["recall_id"],
            set_={
                k: stmt.excluded[k]
                for k in (
                    "version",
                    "status",
                    "snapshot",
                    "published_at",
                    "updated_at",
                    "closed_at",
                    "close_reason",
                )
            },
            # A replay never rolls a recall back; its closure at the same version stands.
            where=or_(
                table.version < stmt.excluded.version,
                and_(
                    table.version == stmt.excluded.version,
                    stmt.excluded.status.in_(ENDED),
                ),
            ),
        )
    )


async def on_recall_published(
    session: AsyncSession, event: ev.RecallPublished | ev.RecallAmended, env: Envelope
) -> None:
    await _store(session, event.recall, "active", env.time, None)


async def on_recall_closed(session: AsyncSession, event: ev.RecallClosed, env: Envelope) -> None:
    status = "withdrawn" if event.withdrawn else "closed"
    await _store(session, event.recall, status, event.closed_at, event.closed_at, event.reason)


PUBLIC_RECALL_HANDLERS: HandlerMap = {
    ev.RecallPublished: on_recall_published,
    ev.RecallAmended: on_recall_published,
    ev.RecallClosed: on_recall_closed,
}
