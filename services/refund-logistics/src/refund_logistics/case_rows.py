"""Case identity and row access shared by the case lifecycle and the refund steps."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from refund_logistics.models import Case

CASE_NAMESPACE = uuid.UUID("3d1e4b8a-7c2f-4a9e-b6d0-8f5e2c1a9b34")


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
