"""Case identity and row access shared by the case lifecycle and the refund steps."""

from __future__ import annotations

import uuid

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from refund_logistics.models import Case

CASE_NAMESPACE = uuid.UUID("3d1e4b8a-7c2f-4a9e-b6d0-8f5e2c1a9b34")

# A case whose recall is not known yet waits for it, and a recall arriving resumes the waiting
# cases: two transactions (remedies.v1 is keyed by customer, recalls.v1 by recall, so they run in
# different slots or instances) that must not miss each other under READ COMMITTED. A case looks
# its recall up under a shared lock per recall, a recall is stored under the exclusive one, so one
# always sees the other's commit.
LOCK_RECALL_SHARED = text(
    "SELECT pg_advisory_xact_lock_shared(hashtextextended('refund-logistics.recall:' || :id, 0))"
)
LOCK_RECALL = text(
    "SELECT pg_advisory_xact_lock(hashtextextended('refund-logistics.recall:' || :id, 0))"
)


class CaseNotFound(Exception):
    pass


def case_id_for(request_id: str) -> str:
    return str(uuid.uuid5(CASE_NAMESPACE, request_id))


async def locked_case(session: AsyncSession, case_id: str) -> Case:
    """The case, locked for the caller's transaction and read fresh; CaseNotFound if none."""
    case = (
        await session.execute(
            select(Case)
            .where(Case.case_id == case_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()
    if case is None:
        raise CaseNotFound(case_id)
    return case
