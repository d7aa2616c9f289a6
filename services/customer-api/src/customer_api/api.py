"""The customer alerts API: every query is scoped to the customer in the bearer token.

Another customer's alert is answered exactly like a missing one (404), so ids reveal nothing.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, Response, status
from fastapi.security import HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from starlette.datastructures import State

from customer_api import label_checks, logic, reads, views
from customer_api.models import CustomerAlert, RemedyRequest
from recall_shared import events as ev
from recall_shared.auth import CustomerTokenVerifier, InvalidToken
from recall_shared.http import Cursor, PathId, RuntimeDep, SessionDep
from recall_shared.openapi import error_responses

router = APIRouter(prefix="/v1/me", tags=["my alerts"])


def authenticated_customer(request: Request) -> str:
    """The customer id of the request's bearer JWT (the verifier remembers tokens it verified), or
    401."""
    scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
    token = token.strip()
    if not token or scheme.lower() != "bearer":
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    verifier: CustomerTokenVerifier = request.app.state.token_verifier
    try:
        return verifier.customer_id(token)
    except InvalidToken as exc:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            str(exc),
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        ) from None


class BearerCustomer(HTTPBearer):
    """:func:`authenticated_customer` as one dependency (rather than FastAPI's HTTPBearer plus a
    dependency on it), documented in OpenAPI as the same ``HTTPBearer`` security scheme."""

    __openapi_errors__ = (401,)  # recall_shared.openapi: every route using it documents its 401

    def __init__(self) -> None:
        super().__init__(auto_error=False, scheme_name="HTTPBearer")

    async def __call__(self, request: Request) -> str:  # type: ignore[override]
        return authenticated_customer(request)


current_customer = BearerCustomer()
# For a route that calls authenticated_customer itself, first thing (the banner: every dependency
# level costs per request): documents the same security requirement as CustomerDep.
BEARER_SECURITY: dict[str, Any] = {"security": [{current_customer.scheme_name: []}]}
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
    # What the recalls page shows of the case (issue 14), for frontends built on this API.
    waiting_for: str | None = Field(
        default=None, description="What the case waits for: proof, review, item, payment, ..."
    )
    label_url: str | None = Field(default=None, description="The prepaid return label")
    label_tracking_number: str | None = None
    timeline: list[dict[str, Any]] = Field(
        default_factory=list, description="The case's steps, oldest first: {step, at, attempt?}"
    )


class NoticeOut(BaseModel):
    notice_id: str
    kind: str
    status: str
    at: datetime
    to_gift_recipient: bool = Field(
        default=False,
        description="Sent to the recipient of a gift you bought, on your behalf: not to you",
    )


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
    open_alerts: int = Field(
        description="Open alerts not yet resolved by a remedy or a 'not affected' answer"
    )
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
        alert_id=a.alert_id,
        recall_id=a.recall_id,
        status=a.status,
        resolution=a.resolution,
        tier=st.tier,
        kind=st.recall.kind,
        title=st.recall.title,
        severity=st.recall.severity,
        hazard=st.recall.hazard,
        stop_using=st.recall.stop_using,
        images=list(st.recall.images),
        units=sum(line.units for line in st.lines),
        acknowledged=a.acknowledged_at is not None,
        created_at=a.created_at,
        updated_at=a.updated_at,
    )


def _remedy_status(r: RemedyRequest) -> RemedyStatus:
    return RemedyStatus(
        request_id=r.request_id,
        remedy=r.remedy,
        state=r.case_state,
        case_id=r.case_id,
        refunded_amount=r.refunded_amount,
        currency=r.currency,
        reason=r.reason,
        requested_at=r.requested_at,
        updated_at=r.updated_at,
        waiting_for=r.waiting_for,
        label_url=r.label_url,
        label_tracking_number=r.label_tracking_number,
        timeline=r.timeline or [],
    )


def _http_error(exc: logic.AlertError) -> HTTPException:
    return HTTPException(exc.status, str(exc))


# ------------------------------------------------------------------ routes


@router.get(
    "/alerts",
    response_model=AlertPage,
    summary="My recalls and product safety alerts",
    responses=error_responses(400),
)
async def list_alerts(
    request: Request,
    customer_id: CustomerDep,
    state: Annotated[
        Literal["open", "resolved", "all"], Query(description="open: needs my attention")
    ] = "all",
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Cursor = None,
) -> Response:
    try:
        rows, next_cursor = await logic.list_alert_rows(
            request.app.state.read_pool, customer_id, state=state, limit=limit, cursor=cursor
        )
    except logic.AlertError as exc:
        raise _http_error(exc) from None
    return Response(content=reads.alert_page_json(rows, next_cursor), media_type="application/json")


async def banner_response(
    app_state: State, customer_id: str, if_none_match: str | None
) -> Response:
    """The banner of an authenticated customer: 200 with the body, or 304 when ``If-None-Match``
    names its tag. Answered by the route below, and for a valid token by
    :class:`customer_api.hot_path.BannerHotPath`."""
    body, etag = reads.banner_json(await logic.banner_row(app_state.read_pool, customer_id))
    headers = {
        "ETag": etag,
        "Cache-Control": app_state.banner_cache_control,
        "Vary": "Authorization",
    }
    if if_none_match and etag in [t.strip() for t in if_none_match.split(",")]:
        return Response(status_code=304, headers=headers)
    return Response(content=body, media_type="application/json", headers=headers)


@router.get(
    "/banner",
    response_model=Banner,
    summary="What the orders page shows above the orders",
    openapi_extra=BEARER_SECURITY,
    responses=error_responses(
        401, also={304: {"description": "Not modified: If-None-Match names the current ETag"}}
    ),
)
async def banner(
    request: Request, if_none_match: Annotated[str | None, Header()] = None
) -> Response:
    return await banner_response(request.app.state, authenticated_customer(request), if_none_match)


@router.get(
    "/alerts/{alert_id}",
    response_model=AlertDetail,
    summary="One of my alerts, in full",
    responses=error_responses(404),
)
async def get_alert(alert_id: PathId, customer_id: CustomerDep, session: SessionDep) -> AlertDetail:
    try:
        a = await logic.own_alert(session, customer_id, alert_id)
    except logic.AlertError as exc:
        raise _http_error(exc) from None
    st = ev.AlertState.model_validate(a.state)
    notices = await logic.notices_of(session, alert_id)
    remedy = await logic.remedy_of(session, alert_id)
    return AlertDetail(
        **_summary(a).model_dump(),
        product_description=st.recall.product_description,
        remedies=list(st.recall.remedies),
        consumer_contact=st.recall.consumer_contact,
        lines=list(st.lines),
        notices=[
            NoticeOut(
                notice_id=n.notice_id,
                kind=n.kind,
                status=n.status,
                at=n.at,
                to_gift_recipient=n.gift_recipient,
            )
            for n in notices
        ],
        remedy=_remedy_status(remedy) if remedy else None,
    )


@router.post(
    "/alerts/{alert_id}/acknowledge",
    response_model=AlertSummary,
    summary="I have read this alert",
    responses=error_responses(404, 409),
)
async def acknowledge(
    alert_id: PathId, customer_id: CustomerDep, session: SessionDep, request: Request
) -> AlertSummary:
    try:
        a = await logic.acknowledge(session, customer_id, alert_id)
    except logic.AlertError as exc:
        raise _http_error(exc) from None
    summary = _summary(a)  # before the view: a failed write's rollback expires the entity
    # "I have read this alert" is a JSON API client's first-party view (views.py); a GET is not.
    await views.recorder(request).record_or_log(session, a)
    return summary


@router.post(
    "/alerts/{alert_id}/not-affected",
    response_model=AlertSummary,
    summary="My unit is not affected",
    responses=error_responses(404, 409),
)
async def not_affected(
    alert_id: PathId,
    customer_id: CustomerDep,
    session: SessionDep,
    runtime: RuntimeDep,
    body: NotAffectedIn | None = None,
) -> AlertSummary:
    try:
        a = await logic.declare_not_affected(
            session, runtime, customer_id, alert_id, body.reason if body else ""
        )
    except logic.AlertError as exc:
        raise _http_error(exc) from None
    return _summary(a)


@router.post(
    "/alerts/{alert_id}/remedy",
    status_code=202,
    response_model=RemedyStatus,
    summary="Choose a remedy",
    responses=error_responses(
        404,
        409,
        also={200: {"description": "Already chosen: the remedy's progress", "model": RemedyStatus}},
    ),
)
async def choose_remedy(
    alert_id: PathId,
    body: RemedyChoice,
    customer_id: CustomerDep,
    session: SessionDep,
    runtime: RuntimeDep,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> RemedyStatus:
    try:
        req, outcome = await logic.choose_remedy(
            session, runtime, customer_id, alert_id, body.remedy, idempotency_key
        )
    except logic.AlertError as exc:
        raise _http_error(exc) from None
    if outcome == "replayed":
        response.headers["Idempotent-Replayed"] = "true"
    if outcome != "created":
        response.status_code = 200
    return _remedy_status(req)


@router.get(
    "/alerts/{alert_id}/remedy",
    response_model=RemedyStatus,
    summary="My remedy's progress",
    responses=error_responses(404),
)
async def get_remedy(
    alert_id: PathId, customer_id: CustomerDep, session: SessionDep
) -> RemedyStatus:
    try:
        await logic.own_alert(session, customer_id, alert_id)
    except logic.AlertError as exc:
        raise _http_error(exc) from None
    r = await logic.remedy_of(session, alert_id)
    if r is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no remedy chosen for this alert")
    return _remedy_status(r)


# ------------------------------------------------------------------ am I affected?


class LabelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lot: str | None = Field(default=None, min_length=1, max_length=200)
    serial: str | None = Field(default=None, min_length=1, max_length=200)
    manufactured_on: date | None = None
    best_before: date | None = None
    expires_on: date | None = None


class LabelCheckOut(BaseModel):
    answer: Literal["confirmed", "not_affected", "cannot_tell"] = Field(
        description="not_affected also resolves the alert so (the typed values kept as reason)"
    )
    unknown: list[str] = Field(description="What would settle a cannot_tell: lot, serial, ...")
    alert: AlertSummary


@router.post(
    "/alerts/{alert_id}/label-check",
    response_model=LabelCheckOut,
    summary="Am I affected? Check what the product's label says",
    responses=error_responses(404, 409),
)
async def label_check(
    alert_id: PathId,
    body: LabelIn,
    customer_id: CustomerDep,
    session: SessionDep,
    runtime: RuntimeDep,
) -> LabelCheckOut:
    typed = label_checks.Typed(**body.model_dump())
    try:
        answer, a = await label_checks.check_label(session, runtime, customer_id, alert_id, typed)
    except logic.AlertError as exc:
        raise _http_error(exc) from None
    return LabelCheckOut(answer=answer.answer, unknown=list(answer.unknown), alert=_summary(a))
