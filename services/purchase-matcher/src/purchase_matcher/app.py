"""purchase-matcher's composition root."""

from __future__ import annotations

from fastapi import FastAPI

from purchase_matcher.api import router
from purchase_matcher.guard import SellabilityGuard
from purchase_matcher.guard import router as guard_router
from purchase_matcher.guard_hot_path import GuardHotPath
from purchase_matcher.guard_index import GuardIndex
from purchase_matcher.handlers import Matcher
from purchase_matcher.holds import ShipmentHolds
from purchase_matcher.metrics import MatcherMetrics
from purchase_matcher.models import SellerKey
from purchase_matcher.settings import Settings
from purchase_matcher.stop_sales import StopSales
from recall_shared import events as ev
from recall_shared.api_keys import key_handlers
from recall_shared.http import install_common
from recall_shared.read_pool import ReadPool
from recall_shared.service import ServiceRuntime
from recall_shared.topics import (
    CATALOG_LISTINGS,
    COMPLIANCE_LETTERS,
    ORDERS,
    RECALLS,
    REMEDIES,
    SELLERS,
)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    runtime = ServiceRuntime(settings)
    matcher = Matcher(
        runtime.outbox,
        lambda: runtime.producer,
        reader_work_mem=settings.reconcile_work_mem,
        metrics=MatcherMetrics(runtime.metrics.registry),
    )
    stop_sales = StopSales(runtime.outbox, matcher.snapshot)
    matcher.followers += [stop_sales, ShipmentHolds(runtime.outbox)]
    runtime.add_consumer([RECALLS, ORDERS], matcher.handlers())
    # The catalog read model on a group of its own: a catalog backlog does not delay orders or
    # recalls (listing and recall passes lock the listing rows they settle: stop_sales).
    runtime.add_consumer(
        [CATALOG_LISTINGS, COMPLIANCE_LETTERS],
        {
            ev.ListingUpdated: stop_sales.on_listing_updated,
            ev.ComplianceLetterAccepted: stop_sales.on_letter_accepted,
            ev.ComplianceLetterWithdrawn: stop_sales.on_letter_withdrawn,
        },
        group_suffix=".catalog",
    )
    # Customers' label confirmations ("am I affected?", customer-api) on their own group: the
    # rest of remedies.v1 (cases, requests) is skipped without delaying orders or recalls.
    runtime.add_consumer([REMEDIES], matcher.label_handlers(), group_suffix=".labels")
    # API keys (hashes) for the read API, on their own consumer group: a new or revoked key takes
    # effect without waiting behind an order or recall backlog.
    runtime.add_consumer([SELLERS], key_handlers(SellerKey), group_suffix=".sellers")
    app = FastAPI(
        title="Recall Alerts: purchase matcher",
        version="1.0.0",
        description="Joins recalls with order history; one alert per affected customer and recall. "
        "The read API takes an operator's or the recalling seller's API key (X-Api-Key).",
        lifespan=runtime.lifespan,
    )
    # The guard's hot path (purchase_matcher.guard_hot_path): added before install_common, so it
    # runs inside the shared middleware.
    app.add_middleware(GuardHotPath)
    install_common(app, runtime)
    app.include_router(router)
    # The checkout guard's own read pool (recall_shared.read_pool), closed when the runtime stops.
    guard_pool = ReadPool(settings.database_url, "purchase-matcher-guard")
    runtime.add_background("guard-read-pool", guard_pool.run, stop=guard_pool.stop)
    # Its index of the active recalls and operator keys (purchase_matcher.guard_index), refreshed
    # on that pool.
    guard_index = GuardIndex(
        guard_pool,
        refresh_s=settings.guard_index_refresh_s,
        max_age_s=settings.guard_index_max_age_s,
    )
    runtime.add_background("guard-index", guard_index.run, stop=guard_index.stop)
    app.state.sellability_guard = SellabilityGuard(guard_pool, guard_index)
    app.include_router(guard_router)
    return app
