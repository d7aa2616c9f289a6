"""Stop-sales: the catalog read model (catalog.listings.v1) and what stop_sales.v1 says about it.

When a recall is published or amended, every seller's listing it reaches gets a
``stop_sale.declared.v1``; when it is closed, or an amendment or a listing change means it no longer
reaches a listing, a ``stop_sale.lifted.v1`` (domain.listing_reach decides, domain.settle tells the
difference from what was announced). A listing that appears or changes after publication is judged
against the active recalls when its event arrives. A seller's Letter of Compliance an operator
accepted (compliance_letters.v1) is kept in ``stop_sale_clearances``: while the recall's scope
leaves out the stock it describes (domain.cleared_offers), that seller's listing is not stopped,
and a stop-sale already declared is lifted (``out_of_scope``, with the letter's id); a letter
withdrawn is forgotten and the stop-sale declared again.

Concurrency: a recall's pass locks the listings it reads (in product id order) and a listing event
locks its own row by writing it, so a recall pass and a listing event never settle the same listing
from stale reads; every announcement goes through the outbox in the same transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from sqlalchemy import and_, delete, false, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from purchase_matcher.domain import (
    CorrectedScope,
    ListingFacts,
    Reach,
    Recorded,
    cleared_offers,
    model_key,
    offers_reached,
    recall_identifiers,
    settle,
    transition_id,
)
from purchase_matcher.models import (
    ActiveRecall,
    CatalogListing,
    RecallIdentifier,
    StopSale,
    StopSaleClearance,
)
from recall_shared import events as ev
from recall_shared.envelope import Envelope
from recall_shared.identifiers import normalise_gtin
from recall_shared.outbox import Outbox

Offer = tuple[str, str]  # (product id, seller id)
# Matcher._snapshot: a stored recall version, validated once per process.
SnapshotOf = Callable[[str, int, dict], ev.RecallSnapshot]


def listing_facts(row: CatalogListing) -> ListingFacts:
    return ListingFacts(
        row.product_id,
        row.parent_product_id,
        tuple(row.gtins),
        tuple(row.model_keys),
        tuple(row.seller_ids),
    )


class StopSales:
    def __init__(self, outbox: Outbox, snapshot_of: SnapshotOf) -> None:
        self.outbox = outbox
        self.snapshot_of = snapshot_of  # validated recall versions, shared with the matcher

    # ------------------------------------------------------------------ catalog.listings.v1

    async def on_listing_updated(
        self, session: AsyncSession, event: ev.ListingUpdated, env: Envelope
    ) -> None:
        listing = ListingFacts(
            event.product_id,
            event.parent_product_id,
            tuple(sorted({r.gtin14 for g in event.gtins if (r := normalise_gtin(g)).gtin14})),
            tuple(sorted({k for m in event.model_numbers if (k := model_key(m))})),
            tuple(sorted(set(event.seller_ids))),
        )
        values = {**listing._asdict(), "updated_at": env.time}
        for column in ("gtins", "model_keys", "seller_ids"):
            values[column] = list(values[column])
        insert_listing = insert(CatalogListing).values(**values)
        upsert = insert_listing.on_conflict_do_update(
            index_elements=[CatalogListing.product_id],
            set_={k: insert_listing.excluded[k] for k in values if k != "product_id"},
            where=CatalogListing.updated_at <= insert_listing.excluded.updated_at,  # replays
        ).returning(CatalogListing.product_id)
        if (await session.execute(upsert)).first() is None:
            return  # an older state of the listing than the one stored
        for recall in await self._recalls_for(session, listing):
            await self._settle(session, recall, [listing], [listing.product_id], env)

    async def _recalls_for(
        self, session: AsyncSession, listing: ListingFacts
    ) -> list[ev.RecallSnapshot]:
        """Active recalls naming one of the listing's identifiers (its parent's product id among
        them), and those that declared a stop-sale of it (which may have to be lifted)."""
        products = [listing.product_id, *filter(None, [listing.parent_product_id])]
        wanted = [("product", products), ("gtin", listing.gtins), ("model", listing.model_keys)]
        naming = select(RecallIdentifier.recall_id).where(
            or_(
                false(),
                *(
                    and_(RecallIdentifier.kind == kind, RecallIdentifier.value.in_(list(values)))
                    for kind, values in wanted
                    if values
                ),
            )
        )
        declared = select(StopSale.recall_id).where(
            StopSale.product_id == listing.product_id, StopSale.status == "declared"
        )
        rows = await session.execute(
            select(ActiveRecall.recall_id, ActiveRecall.version, ActiveRecall.snapshot)
            .where(
                ActiveRecall.status == "active",
                ActiveRecall.recall_id.in_(naming.union(declared)),
            )
            .order_by(ActiveRecall.recall_id)
        )
        return [self.snapshot_of(r.recall_id, r.version, r.snapshot) for r in rows]

    # ------------------------------------------------------------------ recalls.v1

    async def recall_changed(
        self, session: AsyncSession, recall: ev.RecallSnapshot, env: Envelope
    ) -> None:
        ids = recall_identifiers(recall)
        parents = sorted({p for rule in recall.rules for p in rule.parent_product_ids})
        rows = await session.execute(
            select(CatalogListing)
            .where(
                or_(
                    CatalogListing.product_id.in_(ids["product"]),
                    CatalogListing.parent_product_id.in_(parents),
                    CatalogListing.gtins.overlap(ids["gtin"]),
                    CatalogListing.model_keys.overlap(ids["model"]),
                )
            )
            .order_by(CatalogListing.product_id)
            .with_for_update()
        )
        listings = [listing_facts(row) for row in rows.scalars()]
        await self._settle(session, recall, listings, None, env)

    async def recall_closed(
        self, session: AsyncSession, event: ev.RecallClosed, env: Envelope
    ) -> None:
        await self._settle(session, event.recall, [], None, env, closed=True)

    # ------------------------------------------------------------------ compliance_letters.v1

    async def on_letter_accepted(
        self, session: AsyncSession, event: ev.ComplianceLetterAccepted, env: Envelope
    ) -> None:
        """Keep the letter (the latest accepted one per listing and seller), then settle that
        listing against the recall; a recall not seen yet applies it when it arrives."""
        values = {
            "recall_id": event.recall_id,
            "product_id": event.product_id,
            "seller_id": event.seller_id,
            "letter_id": event.letter_id,
            "made_after": event.made_after,
            "lots": list(event.lots),
            "serials": [r.model_dump() for r in event.serials],
            "best_before_after": event.best_before_after,
            "accepted_at": event.accepted_at,
        }
        stmt = insert(StopSaleClearance).values(**values)
        kept = ("letter_id", "made_after", "lots", "serials", "best_before_after", "accepted_at")
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=["recall_id", "product_id", "seller_id"],
                set_={k: stmt.excluded[k] for k in kept},
                where=StopSaleClearance.accepted_at <= stmt.excluded.accepted_at,
            )
        )
        await self._settle_listing(session, event.recall_id, event.product_id, env)

    async def on_letter_withdrawn(
        self, session: AsyncSession, event: ev.ComplianceLetterWithdrawn, env: Envelope
    ) -> None:
        """Forget the letter (if it is still the one kept for the listing and seller), then settle
        that listing: a stop-sale it had lifted is declared again while the recall reaches it."""
        removed = (
            await session.execute(
                delete(StopSaleClearance)
                .where(
                    StopSaleClearance.recall_id == event.recall_id,
                    StopSaleClearance.product_id == event.product_id,
                    StopSaleClearance.seller_id == event.seller_id,
                    StopSaleClearance.letter_id == event.letter_id,
                )
                .returning(StopSaleClearance.letter_id)
            )
        ).first()
        if removed is not None:
            await self._settle_listing(session, event.recall_id, event.product_id, env)

    async def _settle_listing(
        self, session: AsyncSession, recall_id: str, product_id: str, env: Envelope
    ) -> None:
        """Settle one listing against one recall (a letter of it accepted or withdrawn); a recall
        not seen yet applies its letters when it arrives."""
        recall = (
            await session.execute(
                select(ActiveRecall.recall_id, ActiveRecall.version, ActiveRecall.snapshot).where(
                    ActiveRecall.recall_id == recall_id, ActiveRecall.status == "active"
                )
            )
        ).first()
        listing = await session.get(CatalogListing, product_id, with_for_update=True)
        if recall is None or listing is None:
            return
        snapshot = self.snapshot_of(recall.recall_id, recall.version, recall.snapshot)
        await self._settle(session, snapshot, [listing_facts(listing)], [product_id], env)

    async def _letters(
        self, session: AsyncSession, recall_id: str, product_ids: list[str] | None
    ) -> dict[Offer, CorrectedScope]:
        query = select(StopSaleClearance).where(StopSaleClearance.recall_id == recall_id)
        if product_ids is not None:
            query = query.where(StopSaleClearance.product_id.in_(product_ids))
        return {
            (c.product_id, c.seller_id): CorrectedScope(
                c.letter_id,
                c.made_after,
                tuple(c.lots),
                tuple((r["first"], r["last"]) for r in c.serials or []),
                c.best_before_after,
            )
            for c in (await session.execute(query)).scalars()
        }

    async def lines_changed(
        self,
        session: AsyncSession,
        line_ids: list[str],
        recalls: Iterable[ev.RecallSnapshot],
        env: Envelope,
    ) -> None:
        """Order lines change no listing."""

    # ------------------------------------------------------------------ announcing

    async def _settle(
        self,
        session: AsyncSession,
        recall: ev.RecallSnapshot,
        listings: Iterable[ListingFacts],
        product_ids: list[str] | None,
        env: Envelope,
        *,
        closed: bool = False,
    ) -> None:
        """Announce the difference between what was said of ``recall`` and ``listings`` (those of
        ``product_ids``, or every listing of the recall when None) and what is true now."""
        now = datetime.now(UTC)
        listings = list(listings)
        wanted: dict[Offer, Reach] = {} if closed else offers_reached(recall, listings, now)
        cleared: dict[Offer, str] = {}
        if wanted:
            letters = await self._letters(session, recall.recall_id, product_ids)
            cleared = cleared_offers(recall, listings, letters, now) if letters else {}
            for key in cleared:
                del wanted[key]
        query = select(StopSale).where(StopSale.recall_id == recall.recall_id)
        if product_ids is not None:
            query = query.where(StopSale.product_id.in_(product_ids))
        rows = {
            (r.product_id, r.seller_id): r
            for r in (await session.execute(query.with_for_update())).scalars()
        }
        recorded = {
            key: Recorded(r.status == "declared", r.tier, tuple(r.unknown_attributes))
            for key, r in rows.items()
        }
        # A recall's pass lifts what its scope no longer covers; a listing event, what the listing
        # no longer offers (a seller gone, an identifier changed).
        lift_reason: ev.StopSaleLiftReason = (
            "recall_closed"
            if closed
            else "out_of_scope"
            if product_ids is None
            else "no_longer_listed"
        )
        events: list[tuple[ev.Event, str | None]] = []
        for key, change, reach in settle(recorded, wanted):
            product_id, seller_id = key
            row = rows.get(key)
            transitions = (row.transitions if row else 0) + 1
            if change == "declare" and reach is not None:
                event: ev.Event = ev.StopSaleDeclared(
                    recall_id=recall.recall_id,
                    recall_version=recall.version,
                    product_id=product_id,
                    seller_id=seller_id,
                    tier=reach.tier,
                    unknown_attributes=list(reach.unknown),
                    title=recall.content.title,
                    severity=recall.content.severity,
                    declared_at=now,
                )
                status, tier, unknown = "declared", str(reach.tier), list(reach.unknown)
            else:
                letter_id = cleared.get(key)
                event = ev.StopSaleLifted(
                    recall_id=recall.recall_id,
                    recall_version=recall.version,
                    product_id=product_id,
                    seller_id=seller_id,
                    reason="out_of_scope" if letter_id else lift_reason,
                    lifted_at=now,
                    compliance_letter_id=letter_id,
                )
                assert row is not None  # only announced stop-sales are lifted
                status, tier, unknown = "lifted", row.tier, list(row.unknown_attributes)
            values = {
                "recall_id": recall.recall_id,
                "product_id": product_id,
                "seller_id": seller_id,
                "recall_version": recall.version,
                "status": status,
                "tier": tier,
                "unknown_attributes": unknown,
                "transitions": transitions,
                "updated_at": now,
            }
            stmt = insert(StopSale).values(**values)
            await session.execute(
                stmt.on_conflict_do_update(
                    index_elements=["recall_id", "product_id", "seller_id"],
                    set_={k: stmt.excluded[k] for k in values},
                )
            )
            parts = (recall.recall_id, product_id, seller_id)
            events.append((event, transition_id("stop-sale", parts, transitions)))
        if events:
            await self.outbox.add_many(session, events, causation_id=env.id)
