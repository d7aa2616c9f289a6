"""The customer alerts API: every query is scoped to the customer in the bearer token.

Another customer's alert is answered exactly like a missing one (404), so ids reveal nothing.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, Response, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import and_, func, or_, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from customer_api.models import CustomerAlert, RemedyRequest, SentNotice
from recall_shared import events as ev
from recall_shared.auth import CustomerTokenVerifier, InvalidToken
from recall_shared.http import RuntimeDep, SessionDep

router = APIRouter(prefix="/v1/me", tags=["my alerts"])
_bearer = HTTPBearer(auto_error=False)


async def current_customer(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> str:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
    verifier: CustomerTokenVerifier = request.app.state.token_verifier
    try:
        return verifier.customer_id(credentials.credentials)
    except InvalidToken as exc:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, str(exc), headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
        ) from None


CustomerDep = Annotated[str, Depends(current_customer)]


# ------------------------------------------------------------------ schemas


class RemedyStatus(BaseModel):
    request_id: str
    remedy: ev.RemedyType
    state: str
    case_id: str | None
    refunded_amount: Decimal
    currency: str | None
    reason: str | None
    requested_at: datetime
    updated_at: datetime


class NoticeOut(BaseModel):
    notice_id: str
    kind: str
    status: str
    at: datetime


class AlertSummary(BaseModel):
    alert_id: str
    recall_id: str
    status: Literal["open", "withdrawn", "closed"]
    resolution: str | None
    tier: ev.AlertTier
    kind: ev.RecallKind
    title: str
    severity: ev.Severity
    hazard: str
    stop_using: str
    images: list[str]
    units: int
    acknowledged: bool
    created_at: datetime
    updated_at: datetime


class AlertDetail(AlertSummary):
    product_description: str
    remedies: list[ev.Remedy]
    consumer_contact: str
    lines: list[ev.AffectedLine]
    notices: list[NoticeOut]
    remedy: RemedyStatus | None


class AlertPage(BaseModel):
    items: list[AlertSummary]
    next_cursor: str | None


class Banner(BaseModel):
    open_alerts: int = Field(description="Open alerts not yet resolved by a remedy or a 'not affected' answer")
    most_severe: AlertSummary | None


class RemedyChoice(BaseModel):
    model_config = ConfigDict(extra="forbid")
    remedy: ev.RemedyType


class NotAffectedIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(default="", max_length=1000)


# ------------------------------------------------------------------ helpers


def _summary(a: CustomerAlert) -> AlertSummary:
    st = ev.AlertState.model_validate(a.state)
    return AlertSummary(
        alert_id=a.alert_id, recall_id=a.recall_id, status=a.status, resolution=a.resolution,  # type: ignore[arg-type]
        tier=st.tier, kind=st.recall.kind, title=st.recall.title, severity=st.recall.severity, hazard=st.recall.hazard,
        stop_using=st.recall.stop_using, images=list(st.recall.images), units=sum(l.units for l in st.lines),
        acknowledged=a.acknowledged_at is not None, created_at=a.created_at, updated_at=a.updated_at,
    )


def _remedy_status(r: RemedyRequest) -> RemedyStatus:
    return RemedyStatus(
        request_id=r.request_id, remedy=r.remedy, state=r.case_state, case_id=r.case_id,  # type: ignore[arg-type]
        refunded_amount=r.refunded_amount, currency=r.currency, reason=r.reason, requested_at=r.requested_at,
        updated_at=r.updated_at,
    )


async def _own_alert(session: AsyncSession, customer_id: str, alert_id: str, *, lock: bool = False) -> CustomerAlert:
    stmt = select(CustomerAlert).where(CustomerAlert.alert_id == alert_id, CustomerAlert.customer_id == customer_id)
    if lock:
        stmt = stmt.with_for_update()
    alert = (await session.execute(stmt)).scalar_one_or_none()
    if alert is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "alert not found")
    return alert


def _unresolved_open():  # type: ignore[no-untyped-def]
    return and_(CustomerAlert.status == "open", CustomerAlert.resolution.is_(None))


# ------------------------------------------------------------------ routes


@router.get("/alerts", response_model=AlertPage, summary="My recalls and product safety alerts")
async def list_alerts(
    customer_id: CustomerDep,
    session: SessionDep,
    state: Annotated[Literal["open", "resolved", "all"], Query(description="open: needs my attention")] = "all",
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> AlertPage:
    stmt = (
        select(CustomerAlert)
        .where(CustomerAlert.customer_id == customer_id)
        .order_by(CustomerAlert.created_at.desc(), CustomerAlert.alert_id.desc())
        .limit(limit + 1)
    )
    if state == "open":
        stmt = stmt.where(_unresolved_open())
    elif state == "resolved":
        stmt = stmt.where(or_(CustomerAlert.status != "open", CustomerAlert.resolution.is_not(None)))
    if cursor:
        try:
            ts, aid = cursor.split("_", 1)
            after = (datetime.fromtimestamp(int(ts) / 1_000_000, UTC), aid)
        except ValueError:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, "cursor: not a cursor this API returned") from None
        stmt = stmt.where(tuple_(CustomerAlert.created_at, CustomerAlert.alert_id) < tuple_(*after))
    rows = list((await session.execute(stmt)).scalars())
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = None
    if more and rows:
        last = rows[-1]
        next_cursor = f"{int(last.created_at.timestamp() * 1_000_000)}_{last.alert_id}"
    return AlertPage(items=[_summary(a) for a in rows], next_cursor=next_cursor)


@router.get("/banner", response_model=Banner, summary="What the orders page shows above the orders")
async def banner(
    customer_id: CustomerDep, session: SessionDep, runtime: RuntimeDep, response: Response,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Banner | Response:
    count = await session.scalar(
        select(func.count()).select_from(CustomerAlert).where(CustomerAlert.customer_id == customer_id, _unresolved_open())
    )
    top = (
        await session.execute(
            select(CustomerAlert)
            .where(CustomerAlert.customer_id == customer_id, _unresolved_open())
            .order_by(CustomerAlert.severity_rank, CustomerAlert.created_at.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    tag_basis = f"{count}:{top.alert_id if top else ''}:{top.alert_version if top else ''}:{top.updated_at.isoformat() if top else ''}"
    etag = '"' + hashlib.sha256(tag_basis.encode()).hexdigest()[:32] + '"'
    cache = f"private, max-age={runtime.settings.banner_max_age_s}"
    if if_none_match and etag in [t.strip() for t in if_none_match.split(",")]:
        return Response(status_code=304, headers={"ETag": etag, "Cache-Control": cache})
    response.headers["ETag"] = etag
    response.headers["Cache-Control"] = cache
    response.headers["Vary"] = "Authorization"
    return Banner(open_alerts=int(count or 0), most_severe=_summary(top) if top else None)


@router.get("/alerts/{alert_id}", response_model=AlertDetail, summary="One of my alerts, in full")
async def get_alert(alert_id: str, customer_id: CustomerDep, session: SessionDep) -> AlertDetail:
    a = await _own_alert(session, customer_id, alert_id)
    st = ev.AlertState.model_validate(a.state)
    notices = (
        await session.execute(select(SentNotice).where(SentNotice.alert_id == alert_id).order_by(SentNotice.at))
    ).scalars()
    remedy = (await session.execute(select(RemedyRequest).where(RemedyRequest.alert_id == alert_id))).scalar_one_or_none()
    return AlertDetail(
        **_summary(a).model_dump(),
        product_description=st.recall.product_description,
        remedies=list(st.recall.remedies),
        consumer_contact=st.recall.consumer_contact,
        lines=list(st.lines),
        notices=[NoticeOut(notice_id=n.notice_id, kind=n.kind, status=n.status, at=n.at) for n in notices],
        remedy=_remedy_status(remedy) if remedy else None,
    )


@router.post("/alerts/{alert_id}/acknowledge", response_model=AlertSummary, summary="I have read this alert")
async def acknowledge(alert_id: str, customer_id: CustomerDep, session: SessionDep) -> AlertSummary:
    a = await _own_alert(session, customer_id, alert_id, lock=True)
    if a.acknowledged_at is None:
        a.acknowledged_at = datetime.now(UTC)
        await session.commit()
    return _summary(a)


@router.post("/alerts/{alert_id}/not-affected", response_model=AlertSummary, summary="My unit is not affected")
async def not_affected(
    alert_id: str, customer_id: CustomerDep, session: SessionDep, runtime: RuntimeDep, body: NotAffectedIn | None = None
) -> AlertSummary:
    a = await _own_alert(session, customer_id, alert_id, lock=True)
    if a.status != "open":
        raise HTTPException(status.HTTP_409_CONFLICT, f"alert is {a.status}")
    if a.not_affected_at is None:
        now = datetime.now(UTC)
        a.not_affected_at = now
        a.resolution = a.resolution or "not_affected"
        await runtime.outbox.add(
            session,
            ev.NotAffectedDeclared(alert_id=a.alert_id, customer_id=customer_id, recall_id=a.recall_id,
                                   declared_at=now, reason=body.reason if body else ""),
            event_id=f"not-affected:{a.alert_id}",
        )
        await session.commit()
    return _summary(a)


@router.post("/alerts/{alert_id}/remedy", status_code=202, response_model=RemedyStatus, summary="Choose a remedy")
async def choose_remedy(
    alert_id: str, body: RemedyChoice, customer_id: CustomerDep, session: SessionDep, runtime: RuntimeDep,
    response: Response, idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> RemedyStatus:
    a = await _own_alert(session, customer_id, alert_id, lock=True)
    existing = (await session.execute(select(RemedyRequest).where(RemedyRequest.alert_id == alert_id))).scalar_one_or_none()
    if existing is not None:
        if existing.remedy == body.remedy:
            response.headers["Idempotent-Replayed"] = "true"
            response.status_code = 200
            return _remedy_status(existing)
        raise HTTPException(status.HTTP_409_CONFLICT, f"a remedy was already chosen for this alert: {existing.remedy}")
    if a.status != "open":
        raise HTTPException(status.HTTP_409_CONFLICT, f"alert is {a.status}; no remedy can be chosen")
    offered = {r["type"] for r in a.state["recall"]["remedies"]}
    if body.remedy not in offered:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_ENTITY,
            f"remedy: {body.remedy!r} is not offered for this recall; offered: {', '.join(sorted(offered))}",
        )
    now = datetime.now(UTC)
    req = RemedyRequest(
        request_id=str(uuid.uuid4()), alert_id=alert_id, customer_id=customer_id, remedy=body.remedy,
        idempotency_key=idempotency_key, case_state="requested", refunded_amount=Decimal("0"),
        requested_at=now, updated_at=now,
    )
    try:
        # The outbox insert autoflushes the request row, so a unique violation can surface there too.
        session.add(req)
        await runtime.outbox.add(
            session,
            ev.RemedyRequested(request_id=req.request_id, alert_id=alert_id, customer_id=customer_id,
                               recall_id=a.recall_id, remedy=body.remedy, requested_at=now),
            event_id=f"remedy-request:{req.request_id}",
        )
        await session.commit()
    except IntegrityError:
        await session.rollback()  # a concurrent identical request won; answer with it
        existing = (await session.execute(select(RemedyRequest).where(RemedyRequest.alert_id == alert_id))).scalar_one_or_none()
        if existing is None:  # not this alert's row: the customer's Idempotency-Key belongs to another request
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_ENTITY, "Idempotency-Key: already used for a different request"
            ) from None
        if existing.remedy != body.remedy:
            raise HTTPException(status.HTTP_409_CONFLICT, f"a remedy was already chosen: {existing.remedy}") from None
        response.status_code = 200
        return _remedy_status(existing)
    return _remedy_status(req)


@router.get("/alerts/{alert_id}/remedy", response_model=RemedyStatus, summary="My remedy's progress")
async def get_remedy(alert_id: str, customer_id: CustomerDep, session: SessionDep) -> RemedyStatus:
    await _own_alert(session, customer_id, alert_id)
    r = (await session.execute(select(RemedyRequest).where(RemedyRequest.alert_id == alert_id))).scalar_one_or_none()
    if r is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no remedy chosen for this alert")
    return _remedy_status(r)


