"""POST /v1/imports/{format}: one regulator record becomes a draft recall (operators only)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, HTTPException, Response, status
from pydantic import BaseModel, Field

from recall_intake.api import RecallOut, _out
from recall_intake.auth import OperatorDep
from recall_intake.importers import RecordError, import_record, parse_record
from recall_intake.models import Recall
from recall_shared.http import SessionDep

router = APIRouter(prefix="/v1")

Format = Literal["cpsc", "cpsc-gsa", "openfda", "safety-gate", "auto"]


class OutcomeOut(BaseModel):
    status: Literal["created", "skipped", "linked", "failed"]
    recall_id: str | None
    reason: str
    agency: str
    reference: str
    warnings: list[str] = []


class ImportOut(BaseModel):
    outcome: OutcomeOut
    recall: RecallOut | None = Field(
        description="The draft created, or the recall the record was linked to or "
        "already imported as"
    )


@router.post(
    "/imports/{format}",
    status_code=201,
    response_model=ImportOut,
    tags=["imports"],
    summary="Import one regulator record as a draft recall",
    description="The body is one raw record as the regulator publishes it (CPSC Recalls API or "
    "normalised CPSC record, USA.gov/GSA CPSC record, openFDA enforcement report, EU Safety Gate "
    "record); `auto` detects the shape. 201 when a draft was created; 200 when the record was "
    "already imported (skipped) or is the same event as another agency's record (linked); 422 "
    "when the record is not usable (an error returned as a record, no reference, an unknown "
    "shape).",
    responses={
        200: {"description": "Skipped or linked", "model": ImportOut},
        422: {"description": "The record is not a usable recall"},
    },
)
async def import_one(
    format: Format,
    raw: Annotated[dict[str, Any], Body(description="One raw regulator record")],
    _: OperatorDep,
    session: SessionDep,
    response: Response,
) -> ImportOut:
    try:
        imported = parse_record(format, raw)
    except RecordError as exc:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail={"error": "unusable_record", "message": str(exc)},
        ) from None
    outcome = await import_record(session, imported)
    recall = (
        await session.get(Recall, outcome.recall_id, populate_existing=True)
        if outcome.recall_id
        else None
    )
    if outcome.status != "created":
        response.status_code = status.HTTP_200_OK
    out = _out(recall) if recall is not None else None
    if out is not None and outcome.status == "created":
        out.warnings = outcome.warnings
    return ImportOut(outcome=OutcomeOut(**outcome.as_dict()), recall=out)
