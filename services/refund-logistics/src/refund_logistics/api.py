"""refund-logistics' read API: a case and the cases of a recall (seller authentication: see issue 6)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel
from sqlalchemy import select

from recall_shared.http import SessionDep
from refund_logistics.models import Case, CaseTransition

router = APIRouter(prefix="/v1")


class TransitionOut(BaseModel):
    transition: str
    from_state: str | None
    to_state: str
    at: datetime


class CaseOut(BaseModel):
    case_id: str
    request_id: str
    alert_id: str
    recall_id: str
    remedy: str
    state: str
    waiting_for: str | None
    refunded_amount: Decimal
    currency: str | None
    reason: str | None
    created_at: datetime
    updated_at: datetime
    transitions: list[TransitionOut] = []


@router.get("/cases/{case_id}", response_model=CaseOut, tags=["cases"], summary="A remedy case with its history")
async def get_case(case_id: str, session: SessionDep) -> CaseOut:
    case = await session.get(Case, case_id)
    if case is None:
        raise HTTPException(404, "case not found")
    transitions = (
        await session.execute(select(CaseTransition).where(CaseTransition.case_id == case_id).order_by(CaseTransition.id))
    ).scalars()
    out = CaseOut.model_validate(case, from_attributes=True)
    out.transitions = [TransitionOut.model_validate(t, from_attributes=True) for t in transitions]
    return out
