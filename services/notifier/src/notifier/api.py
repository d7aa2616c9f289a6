"""notifier's read API for operators and customer service: notices of an alert."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import select

from notifier.models import Notice
from recall_shared.http import SessionDep

router = APIRouter(prefix="/v1")


class NoticeOut(BaseModel):
    notice_id: str
    alert_id: str
    kind: str
    alert_version: int
    recipient_role: str
    status: str
    attempts: int
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None


@router.get("/alerts/{alert_id}/notices", response_model=list[NoticeOut], tags=["notices"], summary="Notices of an alert")
async def notices_of_alert(alert_id: str, session: SessionDep) -> list[NoticeOut]:
    rows = (await session.execute(select(Notice).where(Notice.alert_id == alert_id).order_by(Notice.created_at))).scalars()
    return [NoticeOut.model_validate(r, from_attributes=True) for r in rows]
