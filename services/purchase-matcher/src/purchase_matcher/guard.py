"""The checkout guard: ``POST /v1/sellability-checks``, a synchronous answer for the checkout
and the warehouse, per line: allowed, blocked or needs_check, with the recalls and why
(purchase_matcher.sellability decides; this module reads and answers).

Who may call: an operator key (the platform's checkout and warehouse services hold one; sellers do
not call it). It changes nothing, so it is a read in POST form: purchase-matcher has no write rate
limit by default (Settings.write_rate_limit), since checkout calls it for every basket.

The recalls are found in the process's index of the active recalls (purchase_matcher.guard_index,
refreshed from the tables every ``guard_index_refresh_s``, never older than
``guard_index_max_age_s``); while it is not current, as order events find them, through
``recall_identifiers`` (active recalls only). Each recall version is validated once per process
(versions never change).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Request, Response
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from purchase_matcher.api import keys
from purchase_matcher.guard_index import GuardIndex
from purchase_matcher.sellability import LineVerdict, SaleLine, judge, sale_identifiers
from recall_shared import events as ev
from recall_shared.api_keys import Principal
from recall_shared.read_pool import ReadPool

MAX_LINES = 100

# The active recalls naming any of the identifiers ($1 product ids, $2 GTIN-14s, $3 model keys), and
# their versions. bench/bare_guard.py runs the same statements.
RECALLS_NAMING = (
    "SELECT r.recall_id, r.version FROM recalls r WHERE r.status = 'active' AND r.recall_id IN ("
    "SELECT i.recall_id FROM recall_identifiers i WHERE "
    "(i.kind = 'product' AND i.value = ANY($1::text[])) "
    "OR (i.kind = 'gtin' AND i.value = ANY($2::text[])) "
    "OR (i.kind = 'model' AND i.value = ANY($3::text[])))"
)
SNAPSHOTS = (
    "SELECT recall_id, version, snapshot::text FROM recalls WHERE recall_id = ANY($1::text[])"
)


def _gtin14(raw: str | None) -> str | None:
    # A check digit is not verified: a GTIN that fails it is in no recall's scope (recalls carry
    # verified GTIN-14s), so it matches nothing, and the schema's pattern is the whole rule.
    return None if raw is None else raw.zfill(14)


Gtin = Annotated[
    str | None,
    Field(pattern=r"^([0-9]{8}|[0-9]{12,14})$"),
    AfterValidator(_gtin14),
]


class CheckLine(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    ref: ev.Id | None = Field(
        default=None, description="The caller's own id for the line (basket line, pick), echoed"
    )
    product_id: ev.Id
    seller_id: ev.Id = Field(description="Who sells this unit: a recall may cover some sellers'")
    gtin: Gtin = Field(
        default=None, description="GTIN-8, UPC-A (12), EAN-13 or GTIN-14, digits only"
    )
    model_number: ev.Code | None = None
    lot: ev.Code | None = Field(default=None, description="When known (the warehouse's pick)")
    serial: ev.Code | None = None
    manufactured_on: date | None = None
    best_before: date | None = None
    expires_on: date | None = None

    def sale_line(self) -> SaleLine:
        # field by field: model_dump per line was a measurable part of a check
        return SaleLine(
            product_id=self.product_id,
            seller_id=self.seller_id,
            gtin=self.gtin,
            model_number=self.model_number,
            lot=self.lot,
            serial=self.serial,
            manufactured_on=self.manufactured_on,
            best_before=self.best_before,
            expires_on=self.expires_on,
        )


class SellabilityRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lines: list[CheckLine] = Field(min_length=1, max_length=MAX_LINES)


class RecallReason(BaseModel):
    recall_id: str
    recall_version: int
    title: str
    tier: ev.AlertTier = Field(
        description="confirmed: the unit is in scope; possibly_affected: it may be, depending "
        "on unknown_attributes"
    )
    unknown_attributes: list[str] = Field(
        description="What the scope needs and the request did not say (lot, serial, ...)"
    )
    reason: str


class LineAnswer(BaseModel):
    index: int = Field(description="The line's position in the request, from 0")
    ref: str | None
    verdict: Literal["allowed", "blocked", "needs_check"] = Field(
        description="blocked: do not sell or ship; needs_check: read the unit's label "
        "(unknown_attributes) and ask again with them; allowed: no active recall reaches it"
    )
    recalls: list[RecallReason]


class SellabilityAnswer(BaseModel):
    checked_at: datetime
    lines: list[LineAnswer]


class SellabilityGuard:
    """The lookup behind the route: the index (``index``) while it is current, else the tables on
    a read pool of its own (recall_shared.read_pool: one round trip per statement, no session
    around it), with the process's cache of validated recall versions."""

    def __init__(self, pool: ReadPool, index: GuardIndex) -> None:
        self.pool = pool
        self.index = index
        self._snapshots: dict[str, ev.RecallSnapshot] = {}

    async def recalls_naming(self, lines: list[SaleLine]) -> list[ev.RecallSnapshot]:
        state = self.index.fresh_state()
        if state is not None:
            return state.recalls_naming(lines)
        ids = sale_identifiers(lines)
        found = await self.pool.fetch(RECALLS_NAMING, ids["product"], ids["gtin"], ids["model"])
        stale = [
            r["recall_id"]
            for r in found
            if (s := self._snapshots.get(r["recall_id"])) is None or s.version != r["version"]
        ]
        if stale:
            for row in await self.pool.fetch(SNAPSHOTS, stale):
                self._snapshots[row["recall_id"]] = ev.RecallSnapshot.model_validate_json(row[2])
        return [self._snapshots[r["recall_id"]] for r in found]

    async def check(self, request: SellabilityRequest) -> bytes:
        """The answer as JSON (``SellabilityAnswer``), written from plain dicts: no response model
        is built or validated per request (tests check the two agree)."""
        lines = [line.sale_line() for line in request.lines]
        recalls = await self.recalls_naming(lines)
        now = datetime.now(UTC)
        answers = []
        for i, (asked, line) in enumerate(zip(request.lines, lines, strict=True)):
            # every recall found for the request: the rules tell which of them reach this line
            answers.append(answer_of(i, asked.ref, judge(line, recalls, now)))
        return orjson.dumps({"checked_at": now, "lines": answers}, option=orjson.OPT_UTC_Z)


def answer_of(index: int, ref: str | None, judged: LineVerdict) -> dict[str, Any]:
    """A ``LineAnswer`` as a dict."""
    return {
        "index": index,
        "ref": ref,
        "verdict": judged.verdict,
        "recalls": [
            {
                "recall_id": h.recall_id,
                "recall_version": h.recall_version,
                "title": h.title,
                "tier": h.tier,
                "unknown_attributes": list(h.unknown_attributes),
                "reason": h.reason,
            }
            for h in judged.recalls
        ],
    }


async def _guard(request: Request) -> SellabilityGuard:
    return request.app.state.sellability_guard


def _pool_of(request: Request) -> ReadPool:
    guard: SellabilityGuard = request.app.state.sellability_guard
    return guard.pool


GUARD_PATH = "/v1/sellability-checks"
router = APIRouter()
# The operator key is read on the guard's read pool too: one round trip, no session.
require_operator = keys.operator_on(_pool_of)
OperatorDep = Annotated[Principal, Depends(require_operator)]


@router.post(
    GUARD_PATH,
    response_model=SellabilityAnswer,
    tags=["checkout guard"],
    summary="May these lines be sold or shipped now? Per line: allowed, blocked or needs_check, "
    "with the recalls and why (operator key: checkout, warehouse)",
)
async def check_sellability(
    body: SellabilityRequest,
    principal: OperatorDep,
    guard: Annotated[SellabilityGuard, Depends(_guard)],
) -> Response:
    return Response(await guard.check(body), media_type="application/json")
