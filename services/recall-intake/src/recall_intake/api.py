"""recall-intake REST API: /v1/recalls and the operator's sellers and keys."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Header, HTTPException, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from recall_intake.api_common import created_once, one_or_404
from recall_intake.auth import (
    OperatorDep,
    Principal,
    PrincipalDep,
    UnknownSeller,
    issue_key,
    revoke_key,
)
from recall_intake.domain import IllegalTransition, fingerprint, transition
from recall_intake.models import ApiKey, Recall, RecallVersion, Seller
from recall_intake.scope import PreparedScope, ScopeProblems, prepare_rules
from recall_intake.screening import screen_draft
from recall_shared import events as ev
from recall_shared.cursors import decode_cursor, encode_cursor
from recall_shared.event_ids import event_id
from recall_shared.http import Cursor, PathId, RuntimeDep, SessionDep
from recall_shared.notice_items import NoticeItem
from recall_shared.notice_items import missing as missing_notice_items
from recall_shared.notice_view import untranslated_locales
from recall_shared.openapi import GTIN_FORMAT, NOT_KNOWN_YET, error_responses
from recall_shared.validation import SafeStr

router = APIRouter(prefix="/v1")


# ------------------------------------------------------------------ schemas


class ScopeRuleIn(ev.ScopeRule):
    """A rule as written: GTINs in any common spelling (normalised to GTIN-14 on the way in)."""

    # The schema says what the validator checks: at least one identifier list is non-empty.
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "anyOf": [
                {"required": [name], "properties": {name: {"minItems": 1}}}
                for name in ev.IDENTIFIER_LISTS
            ]
        },
    )
    # The format names the check-digit rule the scope code applies (recall_shared.identifiers).
    gtins: list[
        Annotated[
            str, Field(min_length=1, max_length=40, json_schema_extra={"format": GTIN_FORMAT})
        ]
    ] = Field(
        default=[],
        description="UPC-A, EAN-13, GTIN-14 or EAN-8, with or without spaces and hyphens "
        '("0-11110-91128-5")',
    )


class RecallIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    content: ev.SellerRecallContent
    rules: list[ScopeRuleIn] = Field(min_length=1)
    logistics_enrolled: bool = Field(
        default=False,
        description="Let the marketplace run refunds and returns for this recall (RLS)",
    )


class AmendmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    content: ev.SellerRecallContent | None = Field(
        default=None, description="New content; omitted keeps the current"
    )
    rules: list[ScopeRuleIn] = Field(min_length=1, description="The full scope of the new version")


class VersionOut(BaseModel):
    version: int
    event_type: str
    recall: ev.RecallSnapshot
    created_at: datetime


class RecallOut(BaseModel):
    recall_id: str
    status: Literal["draft", "published", "closed"]
    version: int
    seller_id: str | None
    content: ev.RecallContent
    rules: list[ev.ScopeRule]
    logistics_enrolled: bool
    created_at: datetime
    updated_at: datetime
    published_at: datetime | None
    closed_at: datetime | None
    withdrawn: bool = Field(
        default=False, description="Closed because it was withdrawn (issued in error)"
    )
    close_reason: str = Field(default="", description="Why it was closed or withdrawn")
    versions: list[VersionOut] | None = None
    source: str = "api"
    provenance: dict | None = Field(
        default=None, description="For imported recalls: where each extracted value came from"
    )
    warnings: list[str] = Field(
        default=[], description="Repairs made to the input, e.g. a GTIN check digit added"
    )
    untranslated_locales: list[str] = Field(
        default=[],
        description="The interface languages (en, de, fr, es, it, nl, pl) whose readers get some "
        "of this recall's texts in its own language, as the seller has not given them in theirs "
        "(``content.texts``); notices and pages say so",
    )
    missing_notice_items: list[NoticeItem] = Field(
        default=[],
        description="What a recall notice must state (GPSR Art. 36(2), 16 CFR 1115) that this "
        "content does not yet: brand, identifier_location, units_affected, sale_period, "
        "sale_channels, incidents, helpline, ... (recall_shared.notice_items)",
    )


class RecallPage(BaseModel):
    items: list[RecallOut]
    next_cursor: str | None


class CloseIn(BaseModel):
    """How a recall ends: completed (the default), or withdrawn because it was issued in error."""

    model_config = ConfigDict(extra="forbid")
    withdrawn: bool = False
    reason: SafeStr = Field(
        default="",
        max_length=2000,
        description="Why, in words the public may read (shown on the public recall page)",
    )


class SellerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seller_id: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._-]+$")
    name: str = Field(min_length=1, max_length=300)


class ApiKeyIn(BaseModel):
    # The schema says what _seller_matches_role checks.
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "anyOf": [
                {
                    "properties": {"role": {"const": "seller"}, "seller_id": {"type": "string"}},
                    "required": ["seller_id"],
                },
                {"properties": {"role": {"const": "operator"}, "seller_id": {"type": "null"}}},
            ]
        },
    )
    role: Literal["seller", "operator"]
    seller_id: str | None = Field(
        default=None, min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._-]+$"
    )
    label: str = Field(default="", max_length=200)

    @model_validator(mode="after")
    def _seller_matches_role(self) -> ApiKeyIn:
        if self.role == "seller" and self.seller_id is None:
            raise ValueError("seller_id is required for a seller key")
        if self.role == "operator" and self.seller_id is not None:
            raise ValueError("an operator key has no seller_id")
        return self


class ApiKeyIssued(BaseModel):
    key_id: str
    api_key: str = Field(description="Shown once; only its hash is stored.")
    display_prefix: str
    role: str
    seller_id: str | None


# ------------------------------------------------------------------ helpers


def _out(recall: Recall, versions: list[RecallVersion] | None = None) -> RecallOut:
    content = ev.RecallContent.model_validate(recall.content)
    return RecallOut(
        recall_id=recall.recall_id,
        status=recall.status,
        version=recall.version,
        seller_id=recall.seller_id,
        content=content,
        missing_notice_items=missing_notice_items(content),
        untranslated_locales=untranslated_locales(content),
        rules=[ev.ScopeRule.model_validate(r) for r in recall.rules],
        logistics_enrolled=recall.logistics_enrolled,
        source=recall.source or "api",
        provenance=recall.provenance,
        created_at=recall.created_at,
        updated_at=recall.updated_at,
        published_at=recall.published_at,
        closed_at=recall.closed_at,
        withdrawn=recall.withdrawn,
        close_reason=recall.close_reason,
        versions=None
        if versions is None
        else [
            VersionOut(
                version=v.version,
                event_type=v.event_type,
                recall=ev.RecallSnapshot.model_validate(v.snapshot),
                created_at=v.created_at,
            )
            for v in versions
        ],
    )


async def _load_owned(
    session: AsyncSession, principal: Principal, recall_id: str, *, lock: bool = False
) -> Recall:
    stmt = select(Recall).where(Recall.recall_id == recall_id)
    if not principal.is_operator:
        stmt = stmt.where(
            Recall.seller_id == principal.seller_id
        )  # another seller's recall is "not found"
    recall: Recall = await one_or_404(session, stmt, "recall", lock=lock)
    return recall


async def _prepare(
    session: AsyncSession, principal: Principal, rules: list[ScopeRuleIn]
) -> PreparedScope:
    try:
        return await prepare_rules(session, principal, [r.model_dump(mode="json") for r in rules])
    except ScopeProblems as exc:
        if exc.retry_after is not None:  # not_known_yet: the same request may succeed shortly
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                detail={"error": exc.error, "message": str(exc)},
                headers={"Retry-After": str(exc.retry_after)},
            ) from None
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, detail={"error": exc.error, "message": str(exc)}
        ) from None


def _snapshot(recall: Recall) -> ev.RecallSnapshot:
    return ev.RecallSnapshot(
        recall_id=recall.recall_id,
        version=recall.version,
        seller_id=recall.seller_id,
        content=ev.RecallContent.model_validate(recall.content),
        rules=[ev.ScopeRule.model_validate(r) for r in recall.rules],
        published_at=recall.published_at or datetime.now(UTC),
        logistics_enrolled=recall.logistics_enrolled,
    )


def _encode_cursor(recall: Recall) -> str:
    return encode_cursor(recall.created_at, recall.recall_id)


def _conflict(exc: IllegalTransition) -> HTTPException:
    return HTTPException(
        status.HTTP_409_CONFLICT, detail={"error": "illegal_transition", "message": str(exc)}
    )


# ------------------------------------------------------------------ recalls


@router.post(
    "/recalls",
    status_code=201,
    response_model=RecallOut,
    tags=["recalls"],
    summary="Create a draft recall",
    responses=error_responses(also={409: NOT_KNOWN_YET}),
)
async def create_recall(
    body: RecallIn,
    principal: PrincipalDep,
    session: SessionDep,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> RecallOut:
    payload = body.model_dump(mode="json")
    fp = fingerprint(payload)

    async def prior() -> Recall | None:
        if not idempotency_key:
            return None
        return (
            await session.execute(
                select(Recall).where(
                    Recall.owner_key == principal.owner_key,
                    Recall.idempotency_key == idempotency_key,
                )
            )
        ).scalar_one_or_none()

    warnings: list[str] = []

    async def create() -> Recall:
        scope = await _prepare(session, principal, body.rules)
        warnings.extend(scope.warnings)
        now = datetime.now(UTC)
        recall = Recall(
            recall_id=str(uuid.uuid4()),
            seller_id=principal.seller_id if principal.role == "seller" else None,
            status="draft",
            version=1,
            content=payload["content"],
            rules=[r.model_dump(mode="json") for r in scope.rules],
            logistics_enrolled=body.logistics_enrolled,
            owner_key=principal.owner_key,
            idempotency_key=idempotency_key,
            request_fingerprint=fp,
            created_at=now,
            updated_at=now,
        )
        session.add(recall)
        await session.flush()
        await screen_draft(session, recall)
        return recall

    recall, replayed = await created_once(
        session,
        response,
        find=prior,
        create=create,
        same=lambda found: found.request_fingerprint == fp,
    )
    out = _out(recall)
    if not replayed:
        out.warnings = warnings
    return out


@router.get(
    "/recalls",
    response_model=RecallPage,
    tags=["recalls"],
    summary="List my recalls",
    responses=error_responses(400),
)
async def list_recalls(
    principal: PrincipalDep,
    session: SessionDep,
    status_: Annotated[
        Literal["draft", "published", "closed"] | None, Query(alias="status")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Cursor = None,
) -> RecallPage:
    stmt = (
        select(Recall).order_by(Recall.created_at.desc(), Recall.recall_id.desc()).limit(limit + 1)
    )
    if not principal.is_operator:
        stmt = stmt.where(Recall.seller_id == principal.seller_id)
    if status_:
        stmt = stmt.where(Recall.status == status_)
    if cursor:
        ts, rid = decode_cursor(cursor)
        stmt = stmt.where(tuple_(Recall.created_at, Recall.recall_id) < tuple_(ts, rid))
    rows = list((await session.execute(stmt)).scalars())
    more = len(rows) > limit
    rows = rows[:limit]
    return RecallPage(
        items=[_out(r) for r in rows],
        next_cursor=_encode_cursor(rows[-1]) if more and rows else None,
    )


@router.get(
    "/recalls/{recall_id}",
    response_model=RecallOut,
    tags=["recalls"],
    summary="A recall with all its versions",
    responses=error_responses(404),
)
async def get_recall(recall_id: PathId, principal: PrincipalDep, session: SessionDep) -> RecallOut:
    recall = await _load_owned(session, principal, recall_id)
    versions = list(
        (
            await session.execute(
                select(RecallVersion)
                .where(RecallVersion.recall_id == recall_id)
                .order_by(RecallVersion.version)
            )
        ).scalars()
    )
    return _out(recall, versions)


async def _record_version(
    session: AsyncSession,
    runtime: RuntimeDep,
    recall: Recall,
    event: ev.RecallPublished | ev.RecallAmended,
) -> None:
    snapshot = event.recall
    session.add(
        RecallVersion(
            recall_id=recall.recall_id,
            version=recall.version,
            event_type=event.event_type,
            snapshot=snapshot.model_dump(mode="json"),
        )
    )
    await runtime.outbox.add(
        session, event, event_id=event_id(recall.recall_id, recall.version, event.event_type)
    )


@router.post(
    "/recalls/{recall_id}/publish",
    response_model=RecallOut,
    tags=["recalls"],
    summary="Publish a draft",
    responses=error_responses(404, 409),
)
async def publish_recall(
    recall_id: PathId, principal: PrincipalDep, session: SessionDep, runtime: RuntimeDep
) -> RecallOut:
    recall = await _load_owned(session, principal, recall_id, lock=True)
    await publish(session, runtime, recall)
    await session.commit()
    return _out(recall)


async def publish(session: AsyncSession, runtime: RuntimeDep, recall: Recall) -> None:
    """Publish a draft (locked by the caller) in the caller's transaction: recall.published.v1."""
    try:
        recall.status = transition(recall.status, "publish")
    except IllegalTransition as exc:
        raise _conflict(exc) from None
    if not recall.rules:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail={
                "error": "scope_missing",
                "message": "rules: an imported draft needs at least one rule before "
                "it can be published; add it with PATCH /v1/recalls/{recall_id}",
            },
        )
    now = datetime.now(UTC)
    recall.published_at = now
    recall.updated_at = now
    await _record_version(session, runtime, recall, ev.RecallPublished(recall=_snapshot(recall)))


class DraftEdit(BaseModel):
    model_config = ConfigDict(extra="forbid")
    content: ev.SellerRecallContent | None = None
    rules: list[ScopeRuleIn] | None = Field(default=None, min_length=1)
    logistics_enrolled: bool | None = None


@router.patch(
    "/recalls/{recall_id}",
    response_model=RecallOut,
    tags=["recalls"],
    summary="Edit a draft (for example an imported one) before publishing",
    responses=error_responses(404, 409),
)
async def edit_draft(
    recall_id: str, body: DraftEdit, principal: PrincipalDep, session: SessionDep
) -> RecallOut:
    recall = await _load_owned(session, principal, recall_id, lock=True)
    try:
        transition(recall.status, "edit")
    except IllegalTransition as exc:
        raise _conflict(exc) from None
    warnings: list[str] = []
    if body.rules is not None:
        scope = await _prepare(session, principal, body.rules)
        recall.rules = [r.model_dump(mode="json") for r in scope.rules]
        warnings = scope.warnings
    if body.content is not None:
        recall.content = body.content.model_dump(mode="json")
    if body.logistics_enrolled is not None:
        recall.logistics_enrolled = body.logistics_enrolled
    recall.updated_at = datetime.now(UTC)
    await screen_draft(session, recall)
    await session.commit()
    out = _out(recall)
    out.warnings = warnings
    return out


@router.post(
    "/recalls/{recall_id}/amendments",
    response_model=RecallOut,
    tags=["recalls"],
    summary="Amend a published recall: a new version with its full scope",
    responses=error_responses(404, 409),
)
async def amend_recall(
    recall_id: PathId,
    body: AmendmentIn,
    principal: PrincipalDep,
    session: SessionDep,
    runtime: RuntimeDep,
) -> RecallOut:
    recall = await _load_owned(session, principal, recall_id, lock=True)
    try:
        recall.status = transition(recall.status, "amend")
    except IllegalTransition as exc:
        raise _conflict(exc) from None
    scope = await _prepare(session, principal, body.rules)
    payload = body.model_dump(mode="json")
    if payload["content"] is not None:
        recall.content = payload["content"]
    recall.rules = [r.model_dump(mode="json") for r in scope.rules]
    recall.version += 1
    recall.updated_at = datetime.now(UTC)
    await _record_version(session, runtime, recall, ev.RecallAmended(recall=_snapshot(recall)))
    await session.commit()
    out = _out(recall)
    out.warnings = scope.warnings
    return out


@router.post(
    "/recalls/{recall_id}/close",
    response_model=RecallOut,
    tags=["recalls"],
    summary="Close a recall",
    responses=error_responses(404, 409),
)
async def close_recall(
    recall_id: PathId,
    principal: PrincipalDep,
    session: SessionDep,
    runtime: RuntimeDep,
    body: CloseIn | None = None,
) -> RecallOut:
    recall = await _load_owned(session, principal, recall_id, lock=True)
    try:
        recall.status = transition(recall.status, "close")
    except IllegalTransition as exc:
        raise _conflict(exc) from None
    now = datetime.now(UTC)
    recall.closed_at = now
    recall.updated_at = now
    how = body or CloseIn()
    recall.withdrawn, recall.close_reason = how.withdrawn, how.reason
    event = ev.RecallClosed(
        recall=_snapshot(recall), closed_at=now, withdrawn=how.withdrawn, reason=how.reason
    )
    await runtime.outbox.add(
        session, event, event_id=event_id(recall.recall_id, recall.version, event.event_type)
    )
    await session.commit()
    return _out(recall)


# ------------------------------------------------------------------ operator: sellers and keys


@router.post(
    "/operator/sellers",
    status_code=201,
    tags=["operator"],
    summary="Register a seller",
    responses=error_responses(409),
)
async def create_seller(body: SellerIn, _: OperatorDep, session: SessionDep) -> dict[str, str]:
    if await session.get(Seller, body.seller_id) is not None:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=f"seller {body.seller_id!r} exists")
    session.add(Seller(seller_id=body.seller_id, name=body.name))
    await session.commit()
    return {"seller_id": body.seller_id, "name": body.name}


@router.post(
    "/operator/api-keys",
    status_code=201,
    response_model=ApiKeyIssued,
    tags=["operator"],
    summary="Issue an API key",
    responses=error_responses(409, 422),
)
async def create_api_key(
    body: ApiKeyIn, _: OperatorDep, session: SessionDep, runtime: RuntimeDep
) -> ApiKeyIssued:
    try:
        plaintext, row = await issue_key(
            session,
            role=body.role,
            seller_id=body.seller_id,
            label=body.label,
            pepper=runtime.settings.api_key_pepper,
            outbox=runtime.outbox,
        )
    except UnknownSeller as exc:  # a well-formed request the state refuses: register it first
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail={"error": "unknown_seller", "message": f"{exc}; register it first"},
        ) from None
    await session.commit()
    return ApiKeyIssued(
        key_id=row.key_id,
        api_key=plaintext,
        display_prefix=row.display_prefix,
        role=row.role,
        seller_id=row.seller_id,
    )


@router.delete(
    "/operator/api-keys/{key_id}",
    status_code=204,
    tags=["operator"],
    summary="Revoke an API key",
    responses=error_responses(404),
)
async def revoke_api_key(
    key_id: PathId, _: OperatorDep, session: SessionDep, runtime: RuntimeDep
) -> Response:
    row = await session.get(ApiKey, key_id, with_for_update=True)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="api key not found")
    if row.revoked_at is None:
        await revoke_key(session, row, runtime.outbox)
        await session.commit()
    return Response(status_code=204)
