"""Letters of Compliance through the API: a seller declares the corrected scope of the stock it
offers of a recalled listing (made after a date, of new lots, with serials in given ranges, best
before a later day); an operator accepts or rejects it. An accepted letter goes out as
``compliance_letter.accepted.v1`` (compliance_letters.v1), from which purchase-matcher's stop-sales
lift the listing's stop-sale when the recall's scope leaves that stock out (stop_sale.lifted.v1,
``out_of_scope``, with the letter's id). An operator may withdraw an accepted letter (the stock was
not as it said): ``compliance_letter.withdrawn.v1``, and the stop-sale is declared again.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Header, HTTPException, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from recall_intake.api_common import Limit, created_once, keyset_page, one_or_404
from recall_intake.api_sellers import seller_of
from recall_intake.auth import OperatorDep, Principal, PrincipalDep
from recall_intake.domain import IllegalTransition, LetterDecision, fingerprint, letter_decision
from recall_intake.models import ComplianceLetter, Listing, Recall
from recall_shared import events as ev
from recall_shared.event_ids import event_id
from recall_shared.http import Cursor, PathId, RuntimeDep, SessionDep
from recall_shared.openapi import error_responses

router = APIRouter(prefix="/v1")

LetterStatus = Literal["submitted", "accepted", "rejected", "withdrawn"]


class LetterIn(BaseModel):
    # The schema says what _scoped checks: at least one statement about the stock.
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "anyOf": [
                {"required": ["made_after"], "properties": {"made_after": {"type": "string"}}},
                {"required": ["lots"], "properties": {"lots": {"minItems": 1}}},
                {"required": ["serials"], "properties": {"serials": {"minItems": 1}}},
                {
                    "required": ["best_before_after"],
                    "properties": {"best_before_after": {"type": "string"}},
                },
            ]
        },
    )
    recall_id: str = Field(min_length=1, max_length=36, pattern=r"^[A-Za-z0-9-]+$")
    product_id: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@-]*$")
    made_after: date | None = Field(
        default=None, description="Every unit offered from now on was made after this day"
    )
    lots: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default=[], max_length=100, description="Every unit offered from now on is of these lots"
    )
    serials: list[ev.CodeRange] = Field(
        default=[],
        max_length=100,
        description="Every unit offered from now on has a serial in one of these inclusive ranges "
        "(compared in the collation of the recall's serials)",
    )
    best_before_after: date | None = Field(
        default=None, description="Every unit offered from now on is best before a day after this"
    )
    statement: str = Field(
        default="", max_length=4000, description="The seller's statement, e.g. the supplier's"
    )

    @model_validator(mode="after")
    def _scoped(self) -> LetterIn:
        statements = (self.made_after, self.lots, self.serials, self.best_before_after)
        if not any(x is not None and x != [] for x in statements):
            raise ValueError(
                "made_after, lots, serials, best_before_after: say at least one of when the "
                "stock was made, its lots, its serial ranges, the day it is best before after"
            )
        return self


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str = Field(default="", max_length=2000)


class RejectionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str = Field(min_length=1, max_length=2000, description="Why the letter is not accepted")


class WithdrawalIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str = Field(min_length=1, max_length=2000, description="Why the acceptance is taken back")


class LetterOut(BaseModel):
    letter_id: str
    recall_id: str
    seller_id: str
    product_id: str
    made_after: date | None
    lots: list[str]
    serials: list[ev.CodeRange]
    best_before_after: date | None
    statement: str
    status: LetterStatus
    submitted_at: datetime
    decided_at: datetime | None
    decision_note: str


class LetterPage(BaseModel):
    items: list[LetterOut]
    next_cursor: str | None


def _out(letter: ComplianceLetter) -> LetterOut:
    return LetterOut(
        letter_id=letter.letter_id,
        recall_id=letter.recall_id,
        seller_id=letter.seller_id,
        product_id=letter.product_id,
        made_after=letter.made_after,
        lots=list(letter.lots),
        serials=[ev.CodeRange(**r) for r in letter.serials or []],
        best_before_after=letter.best_before_after,
        statement=letter.statement,
        status=letter.status,
        submitted_at=letter.submitted_at,
        decided_at=letter.decided_at,
        decision_note=letter.decision_note,
    )


def _conflict(error: str, message: str) -> HTTPException:
    return HTTPException(status.HTTP_409_CONFLICT, detail={"error": error, "message": message})


async def _prior(session: AsyncSession, seller_id: str, key: str | None) -> ComplianceLetter | None:
    if not key:
        return None
    return (
        await session.execute(
            select(ComplianceLetter).where(
                ComplianceLetter.seller_id == seller_id, ComplianceLetter.idempotency_key == key
            )
        )
    ).scalar_one_or_none()


@router.post(
    "/sellers/{seller_id}/compliance-letters",
    status_code=201,
    response_model=LetterOut,
    tags=["compliance letters"],
    summary="Declare the corrected scope of a seller's stock of a recalled listing",
    responses=error_responses(404, 409, 422),
)
async def submit_letter(
    seller_id: PathId,
    body: LetterIn,
    principal: PrincipalDep,
    session: SessionDep,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> LetterOut:
    await seller_of(session, principal, seller_id)
    fp = fingerprint(body.model_dump(mode="json"))
    letter, _ = await created_once(
        session,
        response,
        find=lambda: _prior(session, seller_id, idempotency_key),
        create=lambda: _new_letter(session, seller_id, body, fp, idempotency_key),
        same=lambda prior: prior.request_fingerprint == fp,
    )
    return _out(letter)


async def _new_letter(
    session: AsyncSession, seller_id: str, body: LetterIn, fp: str, idempotency_key: str | None
) -> ComplianceLetter:
    recall = await session.get(Recall, body.recall_id)
    if recall is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="recall_id: recall not found")
    if recall.status != "published":
        raise _conflict("recall_not_published", f"recall_id: the recall is {recall.status}")
    listing = await session.get(Listing, body.product_id)
    if listing is None or seller_id not in listing.seller_ids:
        raise _conflict(
            "not_listed",
            f"product_id: the catalog does not list {body.product_id!r} for seller {seller_id!r}",
        )
    letter = ComplianceLetter(
        letter_id=str(uuid.uuid4()),
        recall_id=body.recall_id,
        seller_id=seller_id,
        product_id=body.product_id,
        made_after=body.made_after,
        lots=list(body.lots),
        serials=[r.model_dump() for r in body.serials],
        best_before_after=body.best_before_after,
        statement=body.statement,
        status="submitted",
        idempotency_key=idempotency_key,
        request_fingerprint=fp,
        submitted_at=datetime.now(UTC),
        decision_note="",
    )
    session.add(letter)
    return letter


@router.get(
    "/compliance-letters",
    response_model=LetterPage,
    tags=["compliance letters"],
    summary="Letters of Compliance: a seller's own, or every seller's for an operator",
    responses=error_responses(400),
)
async def list_letters(
    principal: PrincipalDep,
    session: SessionDep,
    status_: Annotated[LetterStatus | None, Query(alias="status")] = None,
    recall_id: Annotated[str | None, Query(max_length=36)] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> LetterPage:
    stmt = select(ComplianceLetter)
    if not principal.is_operator:
        stmt = stmt.where(ComplianceLetter.seller_id == principal.seller_id)
    if status_:
        stmt = stmt.where(ComplianceLetter.status == status_)
    if recall_id:
        stmt = stmt.where(ComplianceLetter.recall_id == recall_id)
    rows, next_cursor = await keyset_page(
        session, stmt, cursor, limit, ComplianceLetter.submitted_at, ComplianceLetter.letter_id
    )
    return LetterPage(items=[_out(r) for r in rows], next_cursor=next_cursor)


async def _load(
    session: AsyncSession, principal: Principal, letter_id: str, *, lock: bool = False
) -> ComplianceLetter:
    stmt = select(ComplianceLetter).where(ComplianceLetter.letter_id == letter_id)
    if not principal.is_operator:
        stmt = stmt.where(ComplianceLetter.seller_id == principal.seller_id)
    letter: ComplianceLetter = await one_or_404(session, stmt, "compliance letter", lock=lock)
    return letter


@router.get(
    "/compliance-letters/{letter_id}",
    response_model=LetterOut,
    tags=["compliance letters"],
    summary="One Letter of Compliance",
    responses=error_responses(404),
)
async def get_letter(letter_id: PathId, principal: PrincipalDep, session: SessionDep) -> LetterOut:
    return _out(await _load(session, principal, letter_id))


async def _decide(
    session: AsyncSession,
    runtime: RuntimeDep,
    principal: Principal,
    letter_id: str,
    decision: LetterDecision,
    note: str,
) -> LetterOut:
    letter = await _load(session, principal, letter_id, lock=True)
    try:
        letter.status, changed = letter_decision(letter.status, decision)
    except IllegalTransition as exc:
        raise _conflict("illegal_transition", str(exc)) from None
    if not changed:
        return _out(letter)
    letter.decided_at, letter.decided_by, letter.decision_note = (
        datetime.now(UTC),
        principal.key_id,
        note,
    )
    if decision == "accept":
        await runtime.outbox.add(
            session,
            ev.ComplianceLetterAccepted(
                letter_id=letter.letter_id,
                recall_id=letter.recall_id,
                product_id=letter.product_id,
                seller_id=letter.seller_id,
                made_after=letter.made_after,
                lots=list(letter.lots),
                serials=[ev.CodeRange(**r) for r in letter.serials or []],
                best_before_after=letter.best_before_after,
                accepted_at=letter.decided_at,
            ),
            event_id=event_id("compliance-letter", letter.letter_id, "accepted"),
        )
    elif decision == "withdraw":
        await runtime.outbox.add(
            session,
            ev.ComplianceLetterWithdrawn(
                letter_id=letter.letter_id,
                recall_id=letter.recall_id,
                product_id=letter.product_id,
                seller_id=letter.seller_id,
                reason=note,
                withdrawn_at=letter.decided_at,
            ),
            event_id=event_id("compliance-letter", letter.letter_id, "withdrawn"),
        )
    await session.commit()
    return _out(letter)


@router.post(
    "/operator/compliance-letters/{letter_id}/acceptance",
    response_model=LetterOut,
    tags=["compliance letters"],
    summary="Accept a Letter of Compliance: stop-sales reinstate what the recall no longer covers",
    responses=error_responses(404, 409),
)
async def accept_letter(
    letter_id: PathId,
    body: DecisionIn,
    principal: OperatorDep,
    session: SessionDep,
    runtime: RuntimeDep,
) -> LetterOut:
    return await _decide(session, runtime, principal, letter_id, "accept", body.note)


@router.post(
    "/operator/compliance-letters/{letter_id}/rejection",
    response_model=LetterOut,
    tags=["compliance letters"],
    summary="Reject a Letter of Compliance",
    responses=error_responses(404, 409),
)
async def reject_letter(
    letter_id: PathId,
    body: RejectionIn,
    principal: OperatorDep,
    session: SessionDep,
    runtime: RuntimeDep,
) -> LetterOut:
    return await _decide(session, runtime, principal, letter_id, "reject", body.note)


@router.post(
    "/operator/compliance-letters/{letter_id}/withdrawal",
    response_model=LetterOut,
    tags=["compliance letters"],
    summary="Withdraw an accepted Letter of Compliance: the stop-sale it lifted is declared again",
    responses=error_responses(404, 409),
)
async def withdraw_letter(
    letter_id: PathId,
    body: WithdrawalIn,
    principal: OperatorDep,
    session: SessionDep,
    runtime: RuntimeDep,
) -> LetterOut:
    return await _decide(session, runtime, principal, letter_id, "withdraw", body.note)
