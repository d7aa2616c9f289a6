"""Catalog screening: a draft without a seller (an operator's, or imported from a regulator) is
matched against the catalog read model (``listings``: GTIN; model number with brand) into
candidate listings with a confidence (domain.screen_listing), kept in ``screening_candidates`` for
an operator to confirm or dismiss (recall_intake.api_screening). A seller's own draft names its own
products and is not screened.

Screening runs when such a draft is created, when its rules are edited, when an import creates or
extends it, and on an operator's request; and a listing the catalog sends later (new, or with new
identifiers) is screened against the drafts screened before it came, by the identifiers they were
screened by (``recalls.screening_gtins``, ``screening_model_keys``). A candidate already decided
keeps its decision; a pending one gets the new confidence. Published recalls are not screened:
purchase-matcher stops the sale of every listing with the GTINs and models they name.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import false, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from recall_intake.domain import ScreenedListing, ScreenedRecall, screen_listing
from recall_intake.models import Listing, Recall, ScreeningCandidate
from recall_shared.identifiers import model_key

_NAMESPACE = uuid.UUID("0b7f3c52-1d7e-4f55-a2c9-3e6c1f0d9b84")


def candidate_id(recall_id: str, product_id: str) -> str:
    return f"sc_{uuid.uuid5(_NAMESPACE, recall_id + chr(0x1F) + product_id).hex}"


def screened(recall: Recall) -> ScreenedRecall:
    rules = recall.rules or []
    return ScreenedRecall(
        product_ids=frozenset(p for r in rules for p in r.get("product_ids") or []),
        gtins=frozenset(g for r in rules for g in r.get("gtins") or []),
        model_keys=frozenset(
            k for r in rules for m in r.get("model_numbers") or [] if (k := model_key(m))
        ),
        brand=str((recall.content or {}).get("brand") or ""),
    )


async def screen_draft(session: AsyncSession, recall: Recall) -> int:
    """Screen one draft (in the caller's transaction); returns how many candidates it has now."""
    if recall.seller_id is not None or recall.status != "draft":
        return 0
    names = screened(recall)
    # Kept, so a listing that comes later is screened against the draft (screen_new_listing).
    recall.screening_gtins = sorted(names.gtins)
    recall.screening_model_keys = sorted(names.model_keys)
    if not (names.gtins or names.model_keys):
        return 0
    rows = (
        await session.execute(
            select(Listing)
            .where(
                or_(
                    false(),
                    *([Listing.gtins.overlap(sorted(names.gtins))] if names.gtins else []),
                    *(
                        [Listing.model_keys.overlap(sorted(names.model_keys))]
                        if names.model_keys
                        else []
                    ),
                )
            )
            .order_by(Listing.product_id)
        )
    ).scalars()
    now = datetime.now(UTC)
    found = 0
    for listing in rows:
        found += await _keep(session, recall, listing, now)
    return found


async def screen_new_listing(session: AsyncSession, listing: Listing) -> int:
    """Screen a listing the catalog sent (new or changed) against the drafts screened before it
    came, by the identifiers they were screened by; returns how many candidates it is now."""
    if not (listing.gtins or listing.model_keys):
        return 0
    drafts = (
        await session.execute(
            select(Recall)
            .where(
                Recall.status == "draft",
                Recall.seller_id.is_(None),
                or_(
                    false(),
                    *([Recall.screening_gtins.overlap(listing.gtins)] if listing.gtins else []),
                    *(
                        [Recall.screening_model_keys.overlap(listing.model_keys)]
                        if listing.model_keys
                        else []
                    ),
                ),
            )
            .order_by(Recall.recall_id)
        )
    ).scalars()
    now = datetime.now(UTC)
    found = 0
    for recall in drafts:
        found += await _keep(session, recall, listing, now)
    return found


async def _keep(session: AsyncSession, recall: Recall, listing: Listing, now: datetime) -> int:
    """Keep the listing as a candidate of the draft if the screening ties them (1), else 0. A
    candidate already decided keeps its decision; a pending one gets the new confidence."""
    candidate = screen_listing(
        screened(recall),
        ScreenedListing(
            listing.product_id, listing.brand, tuple(listing.gtins), tuple(listing.model_keys)
        ),
    )
    if candidate is None:
        return 0
    stmt = insert(ScreeningCandidate).values(
        candidate_id=candidate_id(recall.recall_id, listing.product_id),
        recall_id=recall.recall_id,
        product_id=listing.product_id,
        title=listing.title,
        seller_ids=list(listing.seller_ids),
        confidence=candidate.confidence,
        reasons=list(candidate.reasons),
        status="pending",
        created_at=now,
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["candidate_id"],
            set_={k: stmt.excluded[k] for k in ("title", "seller_ids", "confidence", "reasons")},
            where=ScreeningCandidate.status == "pending",
        )
    )
    return 1
