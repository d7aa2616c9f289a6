"""recall-intake's consumers: the product-ownership read model from catalog.listings.v1, and each
listing screened against the drafts screened before it came (recall_intake.screening)."""

from __future__ import annotations

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from recall_intake.models import Listing
from recall_intake.screening import screen_new_listing
from recall_shared import events as ev
from recall_shared.envelope import Envelope
from recall_shared.handlers import HandlerMap
from recall_shared.identifiers import model_key, normalise_gtin


async def on_listing_updated(
    session: AsyncSession, event: ev.ListingUpdated, env: Envelope
) -> None:
    gtins = sorted({r.gtin14 for g in event.gtins if (r := normalise_gtin(g)).gtin14})
    values = {
        "product_id": event.product_id,
        "title": event.title,
        "brand": event.brand,
        "seller_ids": list(event.seller_ids),
        "gtins": gtins,
        "model_keys": sorted({k for m in event.model_numbers if (k := model_key(m))}),
        "parent_product_id": event.parent_product_id,
        "updated_at": env.time,
    }
    stmt = insert(Listing).values(**values)
    upsert = stmt.on_conflict_do_update(
        index_elements=[Listing.product_id],
        set_={
            k: stmt.excluded[k]
            for k in (
                "title",
                "brand",
                "seller_ids",
                "gtins",
                "model_keys",
                "parent_product_id",
                "updated_at",
            )
        },
        where=Listing.updated_at
        <= stmt.excluded.updated_at,  # a compacted topic may replay older states
    ).returning(Listing.product_id)
    if (await session.execute(upsert)).first() is None:
        return  # an older state than the one kept
    await screen_new_listing(session, Listing(**values))


HANDLERS: HandlerMap = {ev.ListingUpdated: on_listing_updated}
