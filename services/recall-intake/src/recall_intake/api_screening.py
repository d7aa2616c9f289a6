"""The operators' screening review queue: candidate listings the catalog screening found for
drafts (recall_intake.screening), confirmed or dismissed one by one, and the draft published with
the confirmed listings in its scope.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select

from recall_intake.api import RecallOut, ScopeRuleIn, _load_owned, _out, _prepare, publish
from recall_intake.api_common import Limit, keyset_page
from recall_intake.auth import OperatorDep
from recall_intake.domain import confidence_level
from recall_intake.models import ScreeningCandidate
from recall_intake.screening import screen_draft
from recall_shared.http import Cursor, PathId, RuntimeDep, SessionDep
from recall_shared.openapi import error_responses

router = APIRouter(prefix="/v1/operator", tags=["catalog screening"])

CandidateStatus = Literal["pending", "confirmed", "dismissed"]


class CandidateOut(BaseModel):
    candidate_id: str
    recall_id: str
    product_id: str
    title: str
    seller_ids: list[str] = Field(description="The sellers listing it when it was screened")
    confidence: float = Field(ge=0, le=1)
    level: Literal["high", "medium", "low"] = Field(
        description="high: 0.8 or more (a GTIN, or the model with its brand); medium: 0.5 or "
        "more (the model, no brand to compare); low: the model of another brand"
    )
    reasons: list[str]
    status: CandidateStatus
    created_at: datetime
    decided_at: datetime | None


class CandidatePage(BaseModel):
    items: list[CandidateOut]
    next_cursor: str | None


class ScreeningResult(BaseModel):
    recall_id: str
    candidates: int = Field(description="Listings the screening ties to the draft now")
    pending: int = Field(description="Candidates not yet confirmed or dismissed")


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _candidate_out(c: ScreeningCandidate) -> CandidateOut:
    return CandidateOut(
        candidate_id=c.candidate_id,
        recall_id=c.recall_id,
        product_id=c.product_id,
        title=c.title,
        seller_ids=list(c.seller_ids),
        confidence=c.confidence,
        level=confidence_level(c.confidence),
        reasons=list(c.reasons),
        status=c.status,
        created_at=c.created_at,
        decided_at=c.decided_at,
    )


@router.get(
    "/screening-candidates",
    response_model=CandidatePage,
    summary="The review queue: listings screening found for drafts",
    responses=error_responses(400),
)
async def list_candidates(
    _: OperatorDep,
    session: SessionDep,
    status_: Annotated[CandidateStatus | None, Query(alias="status")] = None,
    recall_id: Annotated[str | None, Query(max_length=36)] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> CandidatePage:
    stmt = select(ScreeningCandidate)
    if status_:
        stmt = stmt.where(ScreeningCandidate.status == status_)
    if recall_id:
        stmt = stmt.where(ScreeningCandidate.recall_id == recall_id)
    rows, next_cursor = await keyset_page(
        session, stmt, cursor, limit, ScreeningCandidate.created_at, ScreeningCandidate.candidate_id
    )
    return CandidatePage(items=[_candidate_out(c) for c in rows], next_cursor=next_cursor)


async def _decide(
    session: SessionDep, candidate_id: str, outcome: CandidateStatus, key_id: str
) -> CandidateOut:
    row = await session.get(ScreeningCandidate, candidate_id, with_for_update=True)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="screening candidate not found")
    if row.status != outcome:
        row.status, row.decided_at, row.decided_by = outcome, datetime.now(UTC), key_id
        await session.commit()
    return _candidate_out(row)


@router.post(
    "/screening-candidates/{candidate_id}/confirmation",
    response_model=CandidateOut,
    summary="Confirm a candidate: the listing joins the draft's scope when it is published",
    responses=error_responses(404),
)
async def confirm_candidate(
    candidate_id: PathId, body: DecisionIn, principal: OperatorDep, session: SessionDep
) -> CandidateOut:
    return await _decide(session, candidate_id, "confirmed", principal.key_id)


@router.post(
    "/screening-candidates/{candidate_id}/dismissal",
    response_model=CandidateOut,
    summary="Dismiss a candidate: not the recalled product",
    responses=error_responses(404),
)
async def dismiss_candidate(
    candidate_id: PathId, body: DecisionIn, principal: OperatorDep, session: SessionDep
) -> CandidateOut:
    return await _decide(session, candidate_id, "dismissed", principal.key_id)


async def _counts(session: SessionDep, recall_id: str) -> tuple[int, int]:
    rows = await session.execute(
        select(ScreeningCandidate.status, func.count())
        .where(ScreeningCandidate.recall_id == recall_id)
        .group_by(ScreeningCandidate.status)
    )
    counts: dict[str, int] = {state: count for state, count in rows}
    return sum(counts.values()), counts.get("pending", 0)


@router.post(
    "/recalls/{recall_id}/screening",
    response_model=ScreeningResult,
    summary="Screen a draft against the catalog again (listings sent since)",
    responses=error_responses(404, 409),
)
async def rescreen(
    recall_id: PathId, principal: OperatorDep, session: SessionDep
) -> ScreeningResult:
    recall = await _load_owned(session, principal, recall_id, lock=True)
    if recall.status != "draft" or recall.seller_id is not None:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail={
                "error": "not_screened",
                "message": "only drafts without a seller are screened; this recall is "
                + ("a seller's" if recall.seller_id else recall.status),
            },
        )
    await screen_draft(session, recall)
    await session.commit()
    total, pending = await _counts(session, recall_id)
    return ScreeningResult(recall_id=recall_id, candidates=total, pending=pending)


@router.post(
    "/recalls/{recall_id}/screened-publication",
    response_model=RecallOut,
    summary="Publish a screened draft with the confirmed listings added to its scope",
    responses=error_responses(404, 409, 422),
)
async def publish_screened(
    recall_id: PathId, principal: OperatorDep, session: SessionDep, runtime: RuntimeDep
) -> RecallOut:
    recall = await _load_owned(session, principal, recall_id, lock=True)
    rows = list(
        (
            await session.execute(
                select(ScreeningCandidate)
                .where(ScreeningCandidate.recall_id == recall_id)
                .order_by(ScreeningCandidate.product_id)
            )
        ).scalars()
    )
    if pending := [c.product_id for c in rows if c.status == "pending"]:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail={
                "error": "screening_pending",
                "message": f"confirm or dismiss the {len(pending)} pending candidate(s) first: "
                + ", ".join(pending[:10]),
            },
        )
    confirmed = [c.product_id for c in rows if c.status == "confirmed"]
    if confirmed and recall.status == "draft":
        # The confirmed listings as a rule of their own: any seller's units of those products.
        added = await _prepare(session, principal, [ScopeRuleIn(product_ids=confirmed)])
        recall.rules = [*(recall.rules or []), *(r.model_dump(mode="json") for r in added.rules)]
    await publish(session, runtime, recall)
    await session.commit()
    return _out(recall)
