"""refund-logistics' HTTP API: the seller-facing cases, enrolment and effectiveness reports, the
customer's proof of destruction, and the carrier/warehouse webhook. Who may call what: RLS.md
("Authorization")."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from decimal import Decimal
from email.parser import BytesParser
from email.policy import HTTP
from typing import Annotated, Any, Literal

from fastapi import APIRouter, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import and_, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from recall_shared import events as ev
from recall_shared.cursors import decode_cursor, encode_cursor
from recall_shared.http import Cursor, PathId, QueryId, SessionDep
from recall_shared.openapi import IMAGE_BASE64_FORMAT, error_responses
from refund_logistics.auth import CustomerDep, OperatorDep, Principal, PrincipalDep
from refund_logistics.domain import IllegalCaseTransition, Period, size_problem
from refund_logistics.handlers import CaseConflict, CaseNotFound, Cases
from refund_logistics.models import (
    Case,
    CaseProof,
    CaseProofImage,
    CaseTransition,
    Enrolment,
    Fulfilment,
    KnownRecall,
    LedgerEntry,
    Refund,
    ReturnLabel,
)
from refund_logistics.proof_checks import PHOTO_FORMATS, ImageFacts, UnreadableImage, inspect_image
from refund_logistics.proofs import ReviewItem
from refund_logistics.report import CPSC_COLUMNS, cpsc_csv, cpsc_row, effectiveness

router = APIRouter(prefix="/v1")

PERIOD_PATTERN = r"^[0-9]{4}-[0-9]{2}$"

# The photo formats proof_checks accepts, as the OpenAPI document states them.
IMAGE_TYPES = sorted(PHOTO_FORMATS.values())


def cases_of(request: Request) -> Cases:
    return request.app.state.cases


# ------------------------------------------------------------------ schemas


class TransitionOut(BaseModel):
    transition: str
    from_state: str | None
    to_state: str
    at: datetime


class RefundOut(BaseModel):
    line_id: str
    order_id: str | None
    amount: Decimal
    currency: str
    method: str
    status: str
    provider_ref: str | None
    paid_at: datetime | None


class LabelOut(BaseModel):
    tracking_number: str
    label_url: str
    carrier_ref: str
    created_at: datetime
    received_at: datetime | None


class ProofOut(BaseModel):
    sha256: str
    size: int
    content_type: str
    received_at: datetime
    status: Literal["pending_review", "accepted", "rejected"] = Field(
        description="pending_review: an operator looks at it before the refund"
    )
    attempt: int = Field(description="1 for the first photo; a new one after a rejection counts up")
    width: int | None
    height: int | None
    rejection_reason: str | None = Field(
        description="Why the photo was not accepted (shown to the customer)"
    )


class ReviewOut(BaseModel):
    """A proof waiting for an operator: the case, the photo's facts, and why it was held."""

    case_id: str
    customer_id: str
    recall_id: str
    units: int
    proof: ProofOut
    flags: list[dict[str, Any]] = Field(
        description="duplicate_photo: an earlier photo (case_id, attempt) looks the same"
    )
    image_url: str


class ReviewPage(BaseModel):
    items: list[ReviewOut]
    next_cursor: str | None = Field(
        description="Pass as ?cursor= for the next page; null on the last page"
    )


class FulfilmentOut(BaseModel):
    kind: str
    tracking_number: str | None
    note: str
    at: datetime


class CaseSummary(BaseModel):
    case_id: str
    request_id: str
    alert_id: str
    recall_id: str
    seller_id: str | None
    remedy: str
    state: str
    waiting_for: str | None
    units: int
    refunded_amount: Decimal
    currency: str | None
    reason: str | None
    created_at: datetime
    updated_at: datetime


class CaseOut(CaseSummary):
    transitions: list[TransitionOut] = []
    refunds: list[RefundOut] = []
    label: LabelOut | None = None
    proof: ProofOut | None = None
    fulfilment: FulfilmentOut | None = None


class CasePage(BaseModel):
    items: list[CaseSummary]
    next_cursor: str | None = Field(
        description="Pass as ?cursor= for the next page; null on the last page"
    )


class FulfilmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["replacement", "repair"] | None = Field(
        default=None, description="Must match the case's remedy"
    )
    tracking_number: str | None = Field(default=None, max_length=100)
    note: str = Field(default="", max_length=2000)


class RejectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=2000)


class ProofJson(BaseModel):
    model_config = ConfigDict(extra="forbid")
    image_base64: str = Field(
        min_length=1,
        description="The photo, base64 encoded",
        json_schema_extra={"format": IMAGE_BASE64_FORMAT},
    )
    content_type: str | None = Field(default=None, max_length=100)


class EnrolmentOut(BaseModel):
    recall_id: str
    enrolled: bool
    source: Literal["published", "explicit"] = Field(
        description="explicit: set through this API; wins over the published flag"
    )
    published_enrolled: bool
    changed_at: datetime | None


# ------------------------------------------------------------------ helpers


async def _owned_recall(session: AsyncSession, principal: Principal, recall_id: str) -> KnownRecall:
    recall = await session.get(KnownRecall, recall_id)
    if not principal.owns(recall):
        raise HTTPException(404, "recall not found")
    assert recall is not None
    return recall


async def _visible_case(session: AsyncSession, principal: Principal, case_id: str) -> Case:
    case = await session.get(Case, case_id)
    if case is None or not (
        principal.is_operator or principal.owns(await session.get(KnownRecall, case.recall_id))
    ):
        raise HTTPException(404, "case not found")
    return case


async def _visible_case_out(session: AsyncSession, principal: Principal, case_id: str) -> CaseOut:
    return await _case_out(session, await _visible_case(session, principal, case_id))


def _accepted_while_waiting(out: CaseOut | ProofReceipt, *waiting_for: str) -> JSONResponse:
    """200 with the case, or 202 while the step it started is still under way (a refund paid)."""
    return JSONResponse(
        status_code=202 if out.waiting_for in waiting_for else 200,
        content=out.model_dump(mode="json"),
    )


async def _case_out(session: AsyncSession, case: Case) -> CaseOut:
    await session.refresh(case)
    out = CaseOut.model_validate(case, from_attributes=True)
    out.transitions = [
        TransitionOut.model_validate(t, from_attributes=True)
        for t in (
            await session.execute(
                select(CaseTransition)
                .where(CaseTransition.case_id == case.case_id)
                .order_by(CaseTransition.id)
            )
        ).scalars()
    ]
    out.refunds = [
        RefundOut.model_validate(r, from_attributes=True)
        for r in (
            await session.execute(
                select(Refund).where(Refund.case_id == case.case_id).order_by(Refund.line_id)
            )
        ).scalars()
    ]
    label = await session.get(ReturnLabel, case.case_id)
    out.label = LabelOut.model_validate(label, from_attributes=True) if label else None
    proof = await session.get(CaseProof, case.case_id)
    out.proof = ProofOut.model_validate(proof, from_attributes=True) if proof else None
    fulfilment = await session.get(Fulfilment, case.case_id)
    out.fulfilment = (
        FulfilmentOut.model_validate(fulfilment, from_attributes=True) if fulfilment else None
    )
    return out


def _period(period: str | None) -> Period:
    if period is None:
        return Period.containing(datetime.now(UTC))
    try:
        return Period.parse(period)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None


# ------------------------------------------------------------------ cases (sellers and operators)


@router.get(
    "/cases",
    response_model=CasePage,
    tags=["cases"],
    summary="The cases of my recalls, newest first",
)
async def list_cases(
    principal: PrincipalDep,
    session: SessionDep,
    recall_id: QueryId | None = None,
    state: Annotated[ev.CaseState | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Cursor = None,
) -> CasePage:
    stmt = select(Case)
    if not principal.is_operator:
        stmt = stmt.join(KnownRecall, KnownRecall.recall_id == Case.recall_id).where(
            KnownRecall.seller_id == principal.seller_id
        )
    if recall_id is not None:
        stmt = stmt.where(Case.recall_id == recall_id)
    if state is not None:
        stmt = stmt.where(Case.state == state)
    if cursor:
        at, cid = decode_cursor(cursor)
        stmt = stmt.where(
            or_(Case.created_at < at, and_(Case.created_at == at, Case.case_id < cid))
        )
    rows = list(
        (
            await session.execute(
                stmt.order_by(Case.created_at.desc(), Case.case_id.desc()).limit(limit + 1)
            )
        ).scalars()
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return CasePage(
        items=[CaseSummary.model_validate(c, from_attributes=True) for c in rows],
        next_cursor=encode_cursor(rows[-1].created_at, rows[-1].case_id) if more else None,
    )


@router.get(
    "/cases/{case_id}",
    response_model=CaseOut,
    tags=["cases"],
    summary="A remedy case with its history",
    responses=error_responses(404),
)
async def get_case(case_id: PathId, principal: PrincipalDep, session: SessionDep) -> CaseOut:
    return await _visible_case_out(session, principal, case_id)


@router.post(
    "/cases/{case_id}/fulfilment",
    response_model=CaseOut,
    tags=["cases"],
    summary="The seller shipped the replacement or repaired the unit",
    responses=error_responses(404, 409),
)
async def fulfil(
    case_id: PathId,
    body: FulfilmentIn,
    principal: PrincipalDep,
    session: SessionDep,
    request: Request,
) -> CaseOut:
    async def may_act(tx: AsyncSession, case: Case) -> bool:
        return principal.is_operator or principal.owns(await tx.get(KnownRecall, case.recall_id))

    await cases_of(request).lifecycle.fulfil(
        case_id,
        kind=body.kind,
        tracking_number=body.tracking_number,
        note=body.note,
        key_id=principal.key_id,
        may_act=may_act,
    )
    return await _visible_case_out(session, principal, case_id)


@router.post(
    "/cases/{case_id}/close",
    response_model=CaseOut,
    tags=["cases"],
    summary="Close a completed case",
    responses=error_responses(404, 409),
)
async def close_case(
    case_id: PathId, principal: PrincipalDep, session: SessionDep, request: Request
) -> CaseOut:
    async def may_act(tx: AsyncSession, case: Case) -> bool:
        return principal.is_operator or principal.owns(await tx.get(KnownRecall, case.recall_id))

    await cases_of(request).lifecycle.close(case_id, may_act)
    return await _visible_case_out(session, principal, case_id)


@router.post(
    "/cases/{case_id}/reject",
    response_model=CaseOut,
    tags=["operator"],
    summary="Reject a case, with a reason",
    responses=error_responses(404, 409),
)
async def reject_case(
    case_id: PathId, body: RejectIn, principal: OperatorDep, session: SessionDep, request: Request
) -> CaseOut:
    await cases_of(request).lifecycle.reject(case_id, body.reason)
    return await _visible_case_out(session, principal, case_id)


@router.post(
    "/cases/{case_id}/events/item-received",
    response_model=CaseOut,
    tags=["operator"],
    summary="Carrier/warehouse webhook: the returned item arrived (then the refund is paid)",
    responses=error_responses(
        404,
        409,
        also={202: {"description": "Item received; the refund is being paid", "model": CaseOut}},
    ),
)
async def item_received(
    case_id: PathId, principal: OperatorDep, session: SessionDep, request: Request
) -> Response:
    await cases_of(request).lifecycle.item_received(case_id)
    return _accepted_while_waiting(await _visible_case_out(session, principal, case_id), "payment")


# ------------------------------------------------------------------ the customer's side


def proof_body_limit(max_bytes: int) -> int:
    """The largest upload of a photo of ``max_bytes``: base64 in JSON, or multipart framing, add to
    it."""
    return max_bytes * 4 // 3 + 64 * 1024


PROOF_PATH = r"/v1/cases/[^/]+/proof"


async def _read_proof(request: Request, max_bytes: int, min_side: int) -> tuple[bytes, ImageFacts]:
    # The body was counted while it streamed in, against proof_body_limit
    # (recall_shared.http_guard).
    raw = await request.body()
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "application/json":
        try:
            body = ProofJson.model_validate(json.loads(raw))
            data = base64.b64decode(body.image_base64, validate=True)
        except (ValueError, binascii.Error) as exc:
            raise HTTPException(
                422, f'expected {{"image_base64": ...}} with valid base64: {str(exc)[:200]}'
            ) from None
    elif ctype == "multipart/form-data":
        msg = BytesParser(policy=HTTP).parsebytes(
            b"Content-Type: " + request.headers["content-type"].encode() + b"\r\n\r\n" + raw
        )
        parts = [
            p
            for p in msg.iter_parts()
            if p.get_param("name", header="content-disposition") in ("photo", "file", "image")
        ]
        if not parts:
            raise HTTPException(422, "multipart upload needs a file field named 'photo'")
        # decode=True: the bytes of a non-multipart part (None for a multipart one).
        payload = parts[0].get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
    elif ctype.startswith("image/"):
        data = raw
    else:
        raise HTTPException(
            415,
            "send the photo as multipart/form-data (field 'photo'), image/*, "
            "or JSON {image_base64}",
        )
    if not data:
        raise HTTPException(422, "the photo is empty")
    if len(data) > max_bytes:
        raise HTTPException(413, f"the photo may be at most {max_bytes} bytes")
    try:
        facts = inspect_image(data)
    except UnreadableImage as exc:
        raise HTTPException(422, f"photo: {exc}") from None
    if problem := size_problem(facts.width, facts.height, min_side):
        raise HTTPException(422, f"photo: {problem}")
    return data, facts


class ProofReceipt(BaseModel):
    """What the customer sees after an upload: their case's progress, not the seller's view of
    it."""

    case_id: str
    remedy: str
    state: str
    waiting_for: str | None
    refunded_amount: Decimal
    currency: str | None
    reason: str | None
    proof: ProofOut


@router.post(
    "/cases/{case_id}/proof",
    response_model=ProofReceipt,
    tags=["customer"],
    summary="The customer's photo of the destroyed unit (bearer JWT); the refund follows",
    responses=error_responses(
        404,
        409,
        413,
        415,
        also={
            202: {
                "description": "Proof stored; the refund is being paid, or an operator reviews "
                "the photo first",
                "model": ProofReceipt,
            },
            200: {"description": "Proof stored; refunded"},
        },
    ),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                # Every form states what _read_proof checks: a photo of a type proof_checks reads.
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {"photo": {"type": "string", "format": "binary"}},
                        "required": ["photo"],
                    },
                    "encoding": {"photo": {"contentType": ", ".join(IMAGE_TYPES)}},
                },
                **{
                    kind: {"schema": {"type": "string", "format": "binary"}} for kind in IMAGE_TYPES
                },
                "application/json": {"schema": ProofJson.model_json_schema()},
            },
        }
    },
)
async def submit_proof(case_id: PathId, customer_id: CustomerDep, request: Request) -> Response:
    settings = request.app.state.runtime.settings
    data, facts = await _read_proof(request, settings.proof_max_bytes, settings.proof_min_side_px)
    case, proof = await cases_of(request).proofs.submit(case_id, customer_id, data, facts)
    out = ProofReceipt(
        case_id=case.case_id,
        remedy=case.remedy,
        state=case.state,
        waiting_for=case.waiting_for,
        refunded_amount=case.refunded_amount,
        currency=case.currency,
        reason=case.reason,
        proof=ProofOut.model_validate(proof, from_attributes=True),
    )
    return _accepted_while_waiting(out, "payment", "review")


@router.get(
    "/cases/{case_id}/label",
    response_model=LabelOut,
    tags=["customer"],
    summary="The customer's prepaid return label (bearer JWT)",
    responses=error_responses(404),
)
async def customer_label(
    case_id: PathId, customer_id: CustomerDep, session: SessionDep
) -> LabelOut:
    case = await session.get(Case, case_id)
    label = await session.get(ReturnLabel, case_id)
    if case is None or case.customer_id != customer_id or label is None:
        raise HTTPException(404, "label not found")
    return LabelOut.model_validate(label, from_attributes=True)


# ------------------------------------------------------------------ proof review (operators)


def _review_out(item: ReviewItem) -> ReviewOut:
    return ReviewOut(
        case_id=item.case.case_id,
        customer_id=item.case.customer_id,
        recall_id=item.case.recall_id,
        units=item.case.units,
        proof=ProofOut.model_validate(item.proof, from_attributes=True),
        flags=item.proof.flags,
        image_url=f"/v1/cases/{item.case.case_id}/proof/image",
    )


@router.get(
    "/reviews",
    response_model=ReviewPage,
    tags=["operator"],
    summary="Proofs of destruction waiting for an operator's review, oldest first",
)
async def review_queue(
    principal: OperatorDep,
    session: SessionDep,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Cursor = None,
) -> ReviewPage:
    after = decode_cursor(cursor) if cursor else None
    items = await cases_of(request).proofs.queue(session, limit + 1, after)
    more = len(items) > limit
    items = items[:limit]
    return ReviewPage(
        items=[_review_out(i) for i in items],
        next_cursor=(
            encode_cursor(items[-1].proof.received_at, items[-1].case.case_id) if more else None
        ),
    )


@router.get(
    "/cases/{case_id}/proof/image",
    tags=["operator"],
    summary="The photo of a case's proof of destruction, for its review",
    response_class=Response,
    responses=error_responses(
        404, also={200: {"description": "The photo", "content": {"image/*": {}}}}
    ),
)
async def proof_image(case_id: PathId, principal: OperatorDep, session: SessionDep) -> Response:
    proof = await session.get(CaseProof, case_id)
    image = await session.get(CaseProofImage, case_id)
    if proof is None or image is None:
        raise HTTPException(404, "proof not found")
    return Response(
        bytes(image.image), media_type=proof.content_type, headers={"Cache-Control": "no-store"}
    )


@router.post(
    "/cases/{case_id}/proof/accept",
    response_model=CaseOut,
    tags=["operator"],
    summary="Accept the proof of destruction: the refund follows, once",
    responses=error_responses(
        404,
        409,
        also={202: {"description": "Accepted; the refund is being paid", "model": CaseOut}},
    ),
)
async def accept_proof(
    case_id: PathId, principal: OperatorDep, session: SessionDep, request: Request
) -> Response:
    await cases_of(request).proofs.accept(case_id, principal.key_id)
    return _accepted_while_waiting(await _visible_case_out(session, principal, case_id), "payment")


@router.post(
    "/cases/{case_id}/proof/reject",
    response_model=CaseOut,
    tags=["operator"],
    summary="Reject the proof, with the reason the customer sees; they may upload another",
    responses=error_responses(404, 409),
)
async def reject_proof(
    case_id: PathId, body: RejectIn, principal: OperatorDep, session: SessionDep, request: Request
) -> CaseOut:
    await cases_of(request).proofs.reject(case_id, principal.key_id, body.reason)
    return await _visible_case_out(session, principal, case_id)


# ------------------------------------------------------------------ enrolment and reports


async def _enrolment_out(session: AsyncSession, recall: KnownRecall) -> EnrolmentOut:
    explicit = await session.get(Enrolment, recall.recall_id, populate_existing=True)
    return EnrolmentOut(
        recall_id=recall.recall_id,
        enrolled=explicit.enrolled if explicit else recall.logistics_enrolled,
        source="explicit" if explicit else "published",
        published_enrolled=recall.logistics_enrolled,
        changed_at=explicit.changed_at if explicit else None,
    )


async def _set_enrolment(
    session: AsyncSession, principal: Principal, recall_id: str, enrolled: bool
) -> EnrolmentOut:
    recall = await _owned_recall(session, principal, recall_id)
    stmt = insert(Enrolment).values(
        recall_id=recall_id,
        enrolled=enrolled,
        changed_by_key_id=principal.key_id,
        changed_at=datetime.now(UTC),
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["recall_id"],
            set_={
                "enrolled": stmt.excluded.enrolled,
                "changed_by_key_id": stmt.excluded.changed_by_key_id,
                "changed_at": stmt.excluded.changed_at,
            },
        )
    )
    await session.commit()
    return await _enrolment_out(session, recall)


@router.get(
    "/recalls/{recall_id}/enrolment",
    response_model=EnrolmentOut,
    tags=["enrolment"],
    summary="Is this recall run by RLS?",
    responses=error_responses(404),
)
async def get_enrolment(
    recall_id: PathId, principal: PrincipalDep, session: SessionDep
) -> EnrolmentOut:
    return await _enrolment_out(session, await _owned_recall(session, principal, recall_id))


@router.post(
    "/recalls/{recall_id}/enrolment",
    response_model=EnrolmentOut,
    tags=["enrolment"],
    summary="Enrol the recall: RLS runs refunds and returns for new remedy requests",
    responses=error_responses(404),
)
async def enrol(recall_id: PathId, principal: PrincipalDep, session: SessionDep) -> EnrolmentOut:
    return await _set_enrolment(session, principal, recall_id, True)


@router.delete(
    "/recalls/{recall_id}/enrolment",
    response_model=EnrolmentOut,
    tags=["enrolment"],
    summary="Un-enrol: new remedy requests are referred to the seller; open cases continue",
    responses=error_responses(404),
)
async def unenrol(recall_id: PathId, principal: PrincipalDep, session: SessionDep) -> EnrolmentOut:
    return await _set_enrolment(session, principal, recall_id, False)


@router.get(
    "/recalls/{recall_id}/report",
    tags=["reports"],
    summary="Effectiveness of a recall (to date and in a month)",
    responses=error_responses(404),
)
async def report(
    recall_id: PathId,
    principal: PrincipalDep,
    session: SessionDep,
    period: Annotated[
        str | None,
        Query(description="YYYY-MM (UTC); default: this month", pattern=PERIOD_PATTERN),
    ] = None,
) -> dict[str, Any]:
    recall = await _owned_recall(session, principal, recall_id)
    return await effectiveness(session, recall, _period(period))


@router.get(
    "/recalls/{recall_id}/report/cpsc-monthly",
    tags=["reports"],
    summary="Export in the shape of CPSC's monthly progress report (CSV or JSON)",
    response_class=Response,
    responses=error_responses(
        404,
        also={
            200: {
                "description": "The report: CSV with format=csv, else JSON",
                "content": {
                    "application/json": {"schema": {"type": "object"}},
                    "text/csv": {"schema": {"type": "string"}},
                },
            }
        },
    ),
)
async def cpsc_monthly(
    recall_id: PathId,
    principal: PrincipalDep,
    session: SessionDep,
    period: Annotated[
        str | None,
        Query(description="YYYY-MM (UTC); default: this month", pattern=PERIOD_PATTERN),
    ] = None,
    format: Literal["csv", "json"] = "json",
) -> Response:
    recall = await _owned_recall(session, principal, recall_id)
    p = _period(period)
    row = cpsc_row(await effectiveness(session, recall, p))
    if format == "csv":
        return Response(
            cpsc_csv(row),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": "attachment; "
                f'filename="cpsc-monthly-{recall_id[:64]}-{p}.csv"'
            },
        )
    return JSONResponse(
        {"report": "CPSC monthly progress report", "columns": list(CPSC_COLUMNS), "rows": [row]}
    )


@router.get(
    "/ledger",
    tags=["billing"],
    summary="Refunds paid on a seller's behalf and fees billed",
    responses=error_responses(404),
)
async def ledger(
    principal: PrincipalDep,
    session: SessionDep,
    seller_id: QueryId | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> dict[str, Any]:
    if not principal.is_operator:
        if seller_id is not None and seller_id != principal.seller_id:
            raise HTTPException(404, "seller not found")
        seller_id = principal.seller_id
    stmt = select(LedgerEntry).order_by(LedgerEntry.id.desc()).limit(limit)
    if seller_id is not None:
        stmt = stmt.where(LedgerEntry.seller_id == seller_id)
    entries = list((await session.execute(stmt)).scalars())
    return {
        "seller_id": seller_id,
        "entries": [
            {
                "case_id": e.case_id,
                "kind": e.kind,
                "amount": str(e.amount),
                "currency": e.currency,
                "at": e.created_at.isoformat(),
            }
            for e in entries
        ],
    }


def install_errors(app: FastAPI) -> None:
    """Domain errors as HTTP: unknown case 404, a command that does not fit the state 409 with the
    message."""

    @app.exception_handler(CaseNotFound)
    async def _not_found(request: Request, exc: CaseNotFound) -> JSONResponse:
        return JSONResponse(
            status_code=404,
            content={"error": "not_found", "message": "case not found", "detail": "case not found"},
        )

    @app.exception_handler(IllegalCaseTransition)
    @app.exception_handler(CaseConflict)
    async def _conflict(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(
            status_code=409, content={"error": "conflict", "message": str(exc), "detail": str(exc)}
        )
