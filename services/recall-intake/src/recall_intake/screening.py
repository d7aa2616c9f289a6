"""Catalog screening: a draft without a seller (an operator's, or imported from a regulator) is
matched against the catalog read model (``listings``: GTIN; model number with brand) into
candidate listings with a confidence (domain.screen_listing), kept in ``screening_candidates`` for
an operator to confirm or dismiss (recall_intake.api_screening). A seller's own draft names its own
products and is not screened.

Screening runs when such a draft is created, when its rules are edited, when an import creates or
extends it, and on an operator's request (listings the catalog sent later). A candidate already
decided keeps its decision; a pending one gets the new confidence.
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
        candidate = screen_listing(
            names,
            ScreenedListing(
                listing.product_id, listing.brand, tuple(listing.gtins), tuple(listing.model_keys)
            ),
        )
        if candidate is None:
            continue
        found += 1
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
                set_={
                    k: stmt.excluded[k] for k in ("title", "seller_ids", "confidence", "reasons")
                },
                where=ScreeningCandidate.status == "pending",
            )
        )
    return found
