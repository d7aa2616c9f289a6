"""Seller notices through the API: where a seller is told (email, webhook endpoints), the notices
and their acknowledgement, removal confirmation and closeout, the webhook delivery log, the sale
incidents queue and the seller's report.

A seller sees and acts on its own notices only (another seller's are "not found"); an operator sees
every seller's, may act on a seller's behalf (the acting key is recorded), and alone closes a notice
out and resolves incidents. Repeating a step a notice has taken answers as the first time did.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Header, HTTPException, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Select, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from recall_intake.api_common import Limit, created_once, keyset_page, one_or_404
from recall_intake.auth import OperatorDep, Principal, PrincipalDep
from recall_intake.domain import IllegalTransition, NoticeAction, notice_overdue, notice_step
from recall_intake.models import (
    SaleIncident,
    Seller,
    SellerContact,
    SellerNotice,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from recall_shared.http import Cursor, PathId, SessionDep
from recall_shared.openapi import error_responses

router = APIRouter(prefix="/v1")

EMAIL_PATTERN = r"^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})+$"
# http for receivers on a private network (and tests on loopback); a path of plain characters.
URL_PATTERN = r"^https?://[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?(/[A-Za-z0-9._~%/-]*)?$"
Note = Annotated[str, Field(max_length=2000)]


# ------------------------------------------------------------------ schemas


class ContactIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str = Field(max_length=320, pattern=EMAIL_PATTERN)


class ContactOut(BaseModel):
    seller_id: str
    email: str


class EndpointIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(
        max_length=2000,
        pattern=URL_PATTERN,
        description="Where notices and incidents are POSTed, signed in the Recall-Signature "
        "header: t=<unix time>,v1=<hex HMAC-SHA256 of '<t>.<body>' under the secret>",
    )


class EndpointOut(BaseModel):
    endpoint_id: str
    seller_id: str
    url: str
    secret_prefix: str = Field(description="The start of the signing secret, to tell keys apart")
    created_at: datetime


class EndpointCreated(EndpointOut):
    secret: str = Field(description="The signing secret; shown once")


class EndpointPage(BaseModel):
    items: list[EndpointOut]
    next_cursor: str | None


class AttemptOut(BaseModel):
    attempt: int
    attempted_at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int


class DeliveryOut(BaseModel):
    delivery_id: str
    endpoint_id: str
    event_type: str
    status: Literal["pending", "delivered", "failed"]
    attempts: list[AttemptOut]
    next_attempt_at: datetime | None
    created_at: datetime
    delivered_at: datetime | None


class DeliveryPage(BaseModel):
    items: list[DeliveryOut]
    next_cursor: str | None


NoticeStatusOut = Literal["notified", "acknowledged", "removal_confirmed", "closed"]


class NoticeOut(BaseModel):
    notice_id: str
    recall_id: str
    recall_version: int
    seller_id: str
    title: str
    severity: str
    product_ids: list[str]
    status: NoticeStatusOut
    overdue: bool = Field(description="Not acknowledged by ack_due_at")
    notified_at: datetime
    ack_due_at: datetime
    acknowledged_at: datetime | None
    removal_confirmed_at: datetime | None
    units_removed: int | None
    closed_at: datetime | None
    note: str
    email_status: Literal["pending", "sent", "no_contact", "failed"]
    updates: int = Field(
        description="How many times the seller was told again: an amendment, or a listing the "
        "catalog sent later, added listings once the notice had gone out"
    )
    added_product_ids: list[str] = Field(description="The listings the latest update added")


class NoticePage(BaseModel):
    items: list[NoticeOut]
    next_cursor: str | None


class AcknowledgementIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: Note = ""


class RemovalIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    units_removed: int | None = Field(
        default=None, ge=0, le=2**31 - 1, description="Units taken off sale"
    )
    note: Note = ""


class CloseoutIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: Note = ""


IncidentStatus = Literal["open", "resolved"]


class IncidentOut(BaseModel):
    incident_id: str
    recall_id: str
    seller_id: str
    product_id: str
    order_id: str
    line_id: str
    placed_at: datetime
    recall_published_at: datetime
    status: IncidentStatus
    resolution: str
    detected_at: datetime
    resolved_at: datetime | None


class IncidentPage(BaseModel):
    items: list[IncidentOut]
    next_cursor: str | None


class ResolutionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    resolution: str = Field(min_length=1, max_length=2000, description="What was done")


class SellerReport(BaseModel):
    seller_id: str
    notices: dict[NoticeStatusOut, int]
    overdue_notices: int
    incidents: dict[IncidentStatus, int]
    open_incidents: list[IncidentOut] = Field(description="The 20 most recent open incidents")


# ------------------------------------------------------------------ helpers


async def seller_of(session: AsyncSession, principal: Principal, seller_id: str) -> Seller:
    """The seller named in the path, if the caller may act for it (else 404, as if unknown)."""
    if not principal.is_operator and principal.seller_id != seller_id:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="seller not found")
    row = await session.get(Seller, seller_id) if len(seller_id) <= 100 else None
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="seller not found")
    return row


def _notice_out(n: SellerNotice, now: datetime) -> NoticeOut:
    return NoticeOut(
        notice_id=n.notice_id,
        recall_id=n.recall_id,
        recall_version=n.recall_version,
        seller_id=n.seller_id,
        title=n.title,
        severity=n.severity,
        product_ids=list(n.product_ids),
        status=n.status,
        overdue=notice_overdue(n.status, n.ack_due_at, now),
        notified_at=n.notified_at,
        ack_due_at=n.ack_due_at,
        acknowledged_at=n.acknowledged_at,
        removal_confirmed_at=n.removal_confirmed_at,
        units_removed=n.units_removed,
        closed_at=n.closed_at,
        note=n.note,
        email_status=n.email_status,
        updates=n.updates,
        added_product_ids=list(n.added_product_ids),
    )


def _incident_out(i: SaleIncident) -> IncidentOut:
    return IncidentOut(
        incident_id=i.incident_id,
        recall_id=i.recall_id,
        seller_id=i.seller_id,
        product_id=i.product_id,
        order_id=i.order_id,
        line_id=i.line_id,
        placed_at=i.placed_at,
        recall_published_at=i.recall_published_at,
        status=i.status,
        resolution=i.resolution,
        detected_at=i.detected_at,
        resolved_at=i.resolved_at,
    )


def _endpoint_out(e: WebhookEndpoint) -> EndpointOut:
    return EndpointOut(
        endpoint_id=e.endpoint_id,
        seller_id=e.seller_id,
        url=e.url,
        secret_prefix=e.secret[:12],
        created_at=e.created_at,
    )


# ------------------------------------------------------------------ where a seller is told


@router.put(
    "/sellers/{seller_id}/notice-contact",
    response_model=ContactOut,
    tags=["seller notices"],
    summary="Set the address a seller's recall notices are emailed to (open notices that had "
    "none are emailed now)",
    responses=error_responses(404),
)
async def put_contact(
    seller_id: PathId, body: ContactIn, principal: PrincipalDep, session: SessionDep
) -> ContactOut:
    await seller_of(session, principal, seller_id)
    stmt = insert(SellerContact).values(seller_id=seller_id, email=body.email)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["seller_id"],
            set_={"email": stmt.excluded.email, "updated_at": func.now()},
        )
    )
    # Notices that found no address are emailed now (those still open: a closed one is done).
    await session.execute(
        update(SellerNotice)
        .where(
            SellerNotice.seller_id == seller_id,
            SellerNotice.email_status == "no_contact",
            SellerNotice.status != "closed",
        )
        .values(email_status="pending", email_attempts=0, email_next_at=func.now())
    )
    await session.commit()
    return ContactOut(seller_id=seller_id, email=body.email)


@router.post(
    "/sellers/{seller_id}/webhook-endpoints",
    status_code=201,
    response_model=EndpointCreated,
    tags=["seller notices"],
    summary="Register a webhook endpoint for a seller's notices and incidents",
    responses=error_responses(404, 422),
)
async def create_endpoint(
    seller_id: PathId,
    body: EndpointIn,
    principal: PrincipalDep,
    session: SessionDep,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> EndpointCreated:
    await seller_of(session, principal, seller_id)

    async def prior() -> WebhookEndpoint | None:
        if not idempotency_key:
            return None
        return (
            await session.execute(
                select(WebhookEndpoint).where(
                    WebhookEndpoint.seller_id == seller_id,
                    WebhookEndpoint.idempotency_key == idempotency_key,
                )
            )
        ).scalar_one_or_none()

    async def create() -> WebhookEndpoint:
        row = WebhookEndpoint(
            endpoint_id=str(uuid.uuid4()),
            seller_id=seller_id,
            url=body.url,
            secret="whsec_" + secrets.token_urlsafe(32),
            idempotency_key=idempotency_key,
            created_at=datetime.now(UTC),
        )
        session.add(row)
        return row

    row, _ = await created_once(
        session,
        response,
        find=prior,
        create=create,
        same=lambda found: found.url == body.url,
        differs="url",
    )
    return EndpointCreated(**_endpoint_out(row).model_dump(), secret=row.secret)


@router.get(
    "/sellers/{seller_id}/webhook-endpoints",
    response_model=EndpointPage,
    tags=["seller notices"],
    summary="A seller's webhook endpoints",
    responses=error_responses(404),
)
async def list_endpoints(
    seller_id: PathId,
    principal: PrincipalDep,
    session: SessionDep,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> EndpointPage:
    await seller_of(session, principal, seller_id)
    stmt = select(WebhookEndpoint).where(
        WebhookEndpoint.seller_id == seller_id, WebhookEndpoint.disabled_at.is_(None)
    )
    rows, next_cursor = await keyset_page(
        session, stmt, cursor, limit, WebhookEndpoint.created_at, WebhookEndpoint.endpoint_id
    )
    return EndpointPage(items=[_endpoint_out(e) for e in rows], next_cursor=next_cursor)


@router.delete(
    "/sellers/{seller_id}/webhook-endpoints/{endpoint_id}",
    status_code=204,
    tags=["seller notices"],
    summary="Remove a webhook endpoint (nothing more is sent to it)",
    responses=error_responses(404),
)
async def delete_endpoint(
    seller_id: PathId, endpoint_id: PathId, principal: PrincipalDep, session: SessionDep
) -> Response:
    await seller_of(session, principal, seller_id)
    row = await session.get(WebhookEndpoint, endpoint_id, with_for_update=True)
    if row is None or row.seller_id != seller_id:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="webhook endpoint not found")
    if row.disabled_at is None:
        row.disabled_at = datetime.now(UTC)
        await session.commit()
    return Response(status_code=204)


@router.get(
    "/sellers/{seller_id}/webhook-deliveries",
    response_model=DeliveryPage,
    tags=["seller notices"],
    summary="The webhook delivery log: every delivery to the seller's endpoints, with each try",
    responses=error_responses(400, 404),
)
async def list_deliveries(
    seller_id: PathId,
    principal: PrincipalDep,
    session: SessionDep,
    status_: Annotated[
        Literal["pending", "delivered", "failed"] | None, Query(alias="status")
    ] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> DeliveryPage:
    await seller_of(session, principal, seller_id)
    stmt = select(WebhookDelivery).where(WebhookDelivery.seller_id == seller_id)
    if status_:
        stmt = stmt.where(WebhookDelivery.status == status_)
    rows, next_cursor = await keyset_page(
        session, stmt, cursor, limit, WebhookDelivery.created_at, WebhookDelivery.delivery_id
    )
    attempts: dict[str, list[AttemptOut]] = {r.delivery_id: [] for r in rows}
    if rows:
        for a in (
            await session.execute(
                select(WebhookAttempt)
                .where(WebhookAttempt.delivery_id.in_(list(attempts)))
                .order_by(WebhookAttempt.delivery_id, WebhookAttempt.attempt)
            )
        ).scalars():
            attempts[a.delivery_id].append(
                AttemptOut(
                    attempt=a.attempt,
                    attempted_at=a.attempted_at,
                    status_code=a.status_code,
                    error=a.error,
                    duration_ms=a.duration_ms,
                )
            )
    return DeliveryPage(
        items=[
            DeliveryOut(
                delivery_id=r.delivery_id,
                endpoint_id=r.endpoint_id,
                event_type=r.event_type,
                status=r.status,
                attempts=attempts[r.delivery_id],
                next_attempt_at=r.next_attempt_at if r.status == "pending" else None,
                created_at=r.created_at,
                delivered_at=r.delivered_at,
            )
            for r in rows
        ],
        next_cursor=next_cursor,
    )


# ------------------------------------------------------------------ notices


def _visible_notices(principal: Principal) -> Select:
    stmt = select(SellerNotice)
    if not principal.is_operator:
        stmt = stmt.where(SellerNotice.seller_id == principal.seller_id)
    return stmt


async def _notice_page(
    session: AsyncSession, stmt: Select, limit: int, cursor: str | None
) -> NoticePage:
    rows, next_cursor = await keyset_page(
        session, stmt, cursor, limit, SellerNotice.notified_at, SellerNotice.notice_id
    )
    now = datetime.now(UTC)
    return NoticePage(items=[_notice_out(n, now) for n in rows], next_cursor=next_cursor)


@router.get(
    "/seller-notices",
    response_model=NoticePage,
    tags=["seller notices"],
    summary="Seller notices: a seller's own, or every seller's for an operator",
    responses=error_responses(400),
)
async def list_notices(
    principal: PrincipalDep,
    session: SessionDep,
    status_: Annotated[NoticeStatusOut | None, Query(alias="status")] = None,
    recall_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> NoticePage:
    stmt = _visible_notices(principal)
    if status_:
        stmt = stmt.where(SellerNotice.status == status_)
    if recall_id:
        stmt = stmt.where(SellerNotice.recall_id == recall_id)
    return await _notice_page(session, stmt, limit, cursor)


@router.get(
    "/operator/unacknowledged-notices",
    response_model=NoticePage,
    tags=["seller notices"],
    summary="Notices their sellers have not acknowledged in time (ack_due_at passed)",
    responses=error_responses(400),
)
async def list_unacknowledged(
    _: OperatorDep,
    session: SessionDep,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> NoticePage:
    # domain.notice_overdue, as a query.
    stmt = select(SellerNotice).where(
        SellerNotice.status == "notified", SellerNotice.ack_due_at <= datetime.now(UTC)
    )
    return await _notice_page(session, stmt, limit, cursor)


async def _load_notice(
    session: AsyncSession, principal: Principal, notice_id: str, *, lock: bool
) -> SellerNotice:
    stmt = _visible_notices(principal).where(SellerNotice.notice_id == notice_id)
    notice: SellerNotice = await one_or_404(session, stmt, "seller notice", lock=lock)
    return notice


@router.get(
    "/seller-notices/{notice_id}",
    response_model=NoticeOut,
    tags=["seller notices"],
    summary="One seller notice",
    responses=error_responses(404),
)
async def get_notice(notice_id: PathId, principal: PrincipalDep, session: SessionDep) -> NoticeOut:
    notice = await _load_notice(session, principal, notice_id, lock=False)
    return _notice_out(notice, datetime.now(UTC))


async def _step(
    session: AsyncSession,
    principal: Principal,
    notice_id: str,
    action: NoticeAction,
    note: str,
    units_removed: int | None = None,
) -> NoticeOut:
    notice = await _load_notice(session, principal, notice_id, lock=True)
    try:
        new_status, changed = notice_step(notice.status, action)
    except IllegalTransition as exc:
        raise HTTPException(
            status.HTTP_409_CONFLICT, detail={"error": "illegal_transition", "message": str(exc)}
        ) from None
    now = datetime.now(UTC)
    if changed:
        notice.status = new_status
        if notice.acknowledged_at is None:  # a removal confirmation acknowledges too
            notice.acknowledged_at, notice.acknowledged_by = now, principal.key_id
        if action == "confirm_removal":
            notice.removal_confirmed_at, notice.units_removed = now, units_removed
        if action == "close":
            notice.closed_at = now
        if note:
            notice.note = note
        await session.commit()
    return _notice_out(notice, now)


@router.post(
    "/seller-notices/{notice_id}/acknowledgement",
    response_model=NoticeOut,
    tags=["seller notices"],
    summary="Acknowledge a notice (a repeat answers the same)",
    responses=error_responses(404, 409),
)
async def acknowledge(
    notice_id: PathId, body: AcknowledgementIn, principal: PrincipalDep, session: SessionDep
) -> NoticeOut:
    return await _step(session, principal, notice_id, "acknowledge", body.note)


@router.post(
    "/seller-notices/{notice_id}/removal-confirmation",
    response_model=NoticeOut,
    tags=["seller notices"],
    summary="Confirm the affected stock is off sale (acknowledges the notice too)",
    responses=error_responses(404, 409),
)
async def confirm_removal(
    notice_id: PathId, body: RemovalIn, principal: PrincipalDep, session: SessionDep
) -> NoticeOut:
    return await _step(
        session, principal, notice_id, "confirm_removal", body.note, body.units_removed
    )


@router.post(
    "/seller-notices/{notice_id}/closeout",
    response_model=NoticeOut,
    tags=["seller notices"],
    summary="Close a notice out once the removal is confirmed (operator)",
    responses=error_responses(404, 409),
)
async def close_out(
    notice_id: PathId, body: CloseoutIn, principal: OperatorDep, session: SessionDep
) -> NoticeOut:
    return await _step(session, principal, notice_id, "close", body.note)


# ------------------------------------------------------------------ incidents and the report


@router.get(
    "/incidents",
    response_model=IncidentPage,
    tags=["seller notices"],
    summary="Sales after a recall: the operators' queue, or a seller's own",
    responses=error_responses(400),
)
async def list_incidents(
    principal: PrincipalDep,
    session: SessionDep,
    status_: Annotated[IncidentStatus | None, Query(alias="status")] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> IncidentPage:
    stmt = select(SaleIncident)
    if not principal.is_operator:
        stmt = stmt.where(SaleIncident.seller_id == principal.seller_id)
    if status_:
        stmt = stmt.where(SaleIncident.status == status_)
    rows, next_cursor = await keyset_page(
        session, stmt, cursor, limit, SaleIncident.detected_at, SaleIncident.incident_id
    )
    return IncidentPage(items=[_incident_out(i) for i in rows], next_cursor=next_cursor)


@router.post(
    "/operator/incidents/{incident_id}/resolution",
    response_model=IncidentOut,
    tags=["seller notices"],
    summary="Resolve a sale-after-recall incident (a repeat answers the same)",
    responses=error_responses(404),
)
async def resolve_incident(
    incident_id: PathId, body: ResolutionIn, _: OperatorDep, session: SessionDep
) -> IncidentOut:
    row = await session.get(SaleIncident, incident_id, with_for_update=True)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="incident not found")
    if row.status == "open":
        row.status, row.resolution, row.resolved_at = "resolved", body.resolution, datetime.now(UTC)
        await session.commit()
    return _incident_out(row)


@router.get(
    "/sellers/{seller_id}/report",
    response_model=SellerReport,
    tags=["seller notices"],
    summary="A seller's recall report: notices by status, overdue ones, sale incidents",
    responses=error_responses(404),
)
async def seller_report(
    seller_id: PathId, principal: PrincipalDep, session: SessionDep
) -> SellerReport:
    await seller_of(session, principal, seller_id)
    now = datetime.now(UTC)
    notices: dict[str, int] = {
        "notified": 0,
        "acknowledged": 0,
        "removal_confirmed": 0,
        "closed": 0,
    }
    for notice_status, count in await session.execute(
        select(SellerNotice.status, func.count())
        .where(SellerNotice.seller_id == seller_id)
        .group_by(SellerNotice.status)
    ):
        notices[notice_status] = count
    # domain.notice_overdue, as a count.
    overdue = await session.scalar(
        select(func.count()).where(
            SellerNotice.seller_id == seller_id,
            SellerNotice.status == "notified",
            SellerNotice.ack_due_at <= now,
        )
    )
    incidents: dict[str, int] = {"open": 0, "resolved": 0}
    for incident_status, count in await session.execute(
        select(SaleIncident.status, func.count())
        .where(SaleIncident.seller_id == seller_id)
        .group_by(SaleIncident.status)
    ):
        incidents[incident_status] = count
    recent = (
        await session.execute(
            select(SaleIncident)
            .where(SaleIncident.seller_id == seller_id, SaleIncident.status == "open")
            .order_by(SaleIncident.detected_at.desc(), SaleIncident.incident_id.desc())
            .limit(20)
        )
    ).scalars()
    return SellerReport.model_validate(
        {
            "seller_id": seller_id,
            "notices": notices,
            "overdue_notices": overdue or 0,
            "incidents": incidents,
            "open_incidents": [_incident_out(i) for i in recent],
        }
    )
