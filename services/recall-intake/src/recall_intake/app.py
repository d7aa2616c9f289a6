"""recall-intake's composition root."""

from __future__ import annotations

from fastapi import FastAPI

from recall_intake.api import router
from recall_intake.api_compliance import router as compliance_router
from recall_intake.api_imports import router as imports_router
from recall_intake.api_screening import router as screening_router
from recall_intake.api_sellers import router as sellers_router
from recall_intake.handlers import HANDLERS
from recall_intake.metrics import WatcherMetrics
from recall_intake.regulator_watcher import RegulatorWatcher
from recall_intake.seller_dispatch import SellerDispatcher
from recall_intake.seller_notices import SellerNotices
from recall_intake.settings import Settings
from recall_shared.http import install_common
from recall_shared.service import ServiceRuntime
from recall_shared.topics import ALERTS, CATALOG_LISTINGS, STOP_SALES


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    runtime = ServiceRuntime(settings)
    runtime.add_consumer([CATALOG_LISTINGS], HANDLERS)
    # Seller notices (stop_sales.v1) and sale incidents (alerts.v1) on a group of their own: the
    # alerts backlog of a large recall does not delay the ownership read model.
    notices = SellerNotices(settings)
    runtime.add_consumer([STOP_SALES, ALERTS], notices.handlers(), group_suffix=".sellers")
    app = FastAPI(
        title="Recall Alerts: recall intake",
        version="1.0.0",
        description="Sellers and operators create, publish, amend and close structured, versioned "
        "recalls.",
        lifespan=runtime.lifespan,
    )
    if settings.regulator_poll_interval_s > 0 and settings.regulator_urls():
        metrics = WatcherMetrics(runtime.metrics.registry)
        watcher = RegulatorWatcher(settings, runtime.session_factory, metrics)
        runtime.add_background("regulator-watcher", watcher.run, stop=watcher.stop)
    if settings.seller_dispatch_interval_s > 0:
        dispatcher = SellerDispatcher(settings, runtime.session_factory)
        runtime.add_background("seller-dispatch", dispatcher.run, stop=dispatcher.stop)
    install_common(app, runtime)
    app.include_router(router)
    app.include_router(imports_router)
    app.include_router(sellers_router)
    app.include_router(compliance_router)
    app.include_router(screening_router)
    return app
