"""purchase-matcher's small read API for operators and sellers: alerts of a recall.

Callers authenticate with an ``X-Api-Key`` (recall_shared.api_keys, over the sellers.v1 read model
``seller_keys``): operators see every recall, a seller only the recalls it published (the
``seller_id`` of the stored snapshot). Anything else, and a recall the matcher has not seen, is 404
"recall not found".
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel
from sqlalchemy import func, select

from purchase_matcher.models import ActiveRecall, Alert, SellerKey
from recall_shared.api_keys import ApiKeyAuth, Principal
from recall_shared.http import PathId, SessionDep
from recall_shared.openapi import error_responses

router = APIRouter(prefix="/v1")

keys = ApiKeyAuth(SellerKey, read_model=True)
PrincipalDep = Annotated[Principal, Depends(keys.current_principal)]


class RecallMatchSummary(BaseModel):
    recall_id: str
    alerts_open: int
    alerts_withdrawn: int
    alerts_closed: int
    order_lines_affected: int


@router.get(
    "/recalls/{recall_id}/matches",
    response_model=RecallMatchSummary,
    tags=["matches"],
    summary="How many customers and units a recall reaches "
    "(operator key, or the recalling seller's key)",
    responses=error_responses(404),
)
async def recall_matches(
    recall_id: PathId, principal: PrincipalDep, session: SessionDep
) -> RecallMatchSummary:
    found = (
        await session.execute(
            select(ActiveRecall.snapshot["seller_id"].astext).where(
                ActiveRecall.recall_id == recall_id
            )
        )
    ).first()
    if found is None or not principal.may_see(found[0]):
        raise HTTPException(404, "recall not found")
    rows = dict(
        (
            await session.execute(
                select(Alert.status, func.count())
                .where(Alert.recall_id == recall_id)
                .group_by(Alert.status)
            )
        ).all()
    )
    units = await session.scalar(
        select(func.coalesce(func.sum(Alert.line_count), 0)).where(
            Alert.recall_id == recall_id, Alert.status == "open"
        )
    )
    return RecallMatchSummary(
        recall_id=recall_id,
        alerts_open=rows.get("open", 0),
        alerts_withdrawn=rows.get("withdrawn", 0),
        alerts_closed=rows.get("closed", 0),
        order_lines_affected=int(units or 0),
    )
