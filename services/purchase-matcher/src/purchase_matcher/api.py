"""purchase-matcher's small read API for operators: alerts of a recall."""

from __future__ import annotations


from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import func, select

from purchase_matcher.models import Alert
from recall_shared.http import SessionDep

router = APIRouter(prefix="/v1")


class RecallMatchSummary(BaseModel):
    recall_id: str
    alerts_open: int
    alerts_withdrawn: int
    alerts_closed: int
    order_lines_affected: int


@router.get("/recalls/{recall_id}/matches", response_model=RecallMatchSummary, tags=["matches"],
            summary="How many customers and units a recall reaches")
async def recall_matches(recall_id: str, session: SessionDep) -> RecallMatchSummary:
    rows = dict(
        (await session.execute(select(Alert.status, func.count()).where(Alert.recall_id == recall_id).group_by(Alert.status))).all()
    )
    units = await session.scalar(
        select(func.coalesce(func.sum(Alert.line_count), 0)).where(
            Alert.recall_id == recall_id, Alert.status == "open"
        )
    )
    return RecallMatchSummary(
        recall_id=recall_id, alerts_open=rows.get("open", 0), alerts_withdrawn=rows.get("withdrawn", 0),
        alerts_closed=rows.get("closed", 0), order_lines_affected=int(units or 0),
    )


