"""notifier's read API for operators and customer service: notices of an alert.
 An operator's API key only (``X-Api-Key``, recall_shared.api_keys over the sellers.v1 read model
``seller_keys``): the answers name recipients and their remedy state, and alert ids can be computed
from a recall id and a customer id, so an open route would tell anyone who bought a recalled
product.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from sqlalchemy import select

from notifier.models import Notice, Reminder, SellerKey
from recall_shared.api_keys import ApiKeyAuth, Principal
from recall_shared.http import PathId, SessionDep

router = APIRouter(prefix="/v1")

keys = ApiKeyAuth(SellerKey, read_model=True)
OperatorDep = Annotated[Principal, Depends(keys.require_operator)]


class NoticeOut(BaseModel):
    notice_id: str
    alert_id: str
    kind: str
    alert_version: int
    reminder_no: int
    channel: str = Field(description="email, or sms or letter (a fallback notice of the same one)")
    recipient_role: str
    status: str
    attempts: int
    resent_in_doubt: int
    message_id: str | None
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None
    delivery: str | None = Field(
        description="What became of it once sent, as reported back: delivered | bounced | "
        "complained; null while nothing was reported"
    )
    bounce_type: str | None = Field(description="hard | soft, for a bounced notice")
    delivery_status: str | None = Field(description="The last report's status code, e.g. 5.1.1")
    delivery_detail: str | None
    delivery_at: datetime | None
    soft_bounces: int = Field(description="Soft bounces so far (each re-sent the notice)")


@router.get(
    "/alerts/{alert_id}/notices",
    response_model=list[NoticeOut],
    tags=["notices"],
    summary="Notices of an alert (operator key)",
)
async def notices_of_alert(
    alert_id: PathId, _: OperatorDep, session: SessionDep
) -> list[NoticeOut]:
    rows = (
        await session.execute(
            select(Notice)
            .where(Notice.alert_id == alert_id)
            .order_by(Notice.created_at, Notice.kind, Notice.reminder_no)
        )
    ).scalars()
    return [NoticeOut.model_validate(r, from_attributes=True) for r in rows]


class ReminderOut(BaseModel):
    alert_id: str
    recipient_customer_id: str
    recipient_role: str
    base_at: datetime
    next_no: int
    next_due_at: datetime | None
    stopped_reason: str | None


@router.get(
    "/alerts/{alert_id}/reminders",
    response_model=list[ReminderOut],
    tags=["notices"],
    summary="Reminder schedule of an alert, per recipient (operator key)",
)
async def reminders_of_alert(
    alert_id: PathId, _: OperatorDep, session: SessionDep
) -> list[ReminderOut]:
    rows = (await session.execute(select(Reminder).where(Reminder.alert_id == alert_id))).scalars()
    return [ReminderOut.model_validate(r, from_attributes=True) for r in rows]
