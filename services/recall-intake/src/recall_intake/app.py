"""recall-intake's composition root."""

from __future__ import annotations

from fastapi import FastAPI

from recall_intake.api import router
from recall_intake.api_imports import router as imports_router
from recall_intake.handlers import HANDLERS
from recall_intake.regulator_watcher import RegulatorWatcher
from recall_intake.settings import Settings
from recall_shared.http import install_common
from recall_shared.service import ServiceRuntime
from recall_shared.topics import CATALOG_LISTINGS


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    runtime = ServiceRuntime(settings)
    runtime.add_consumer([CATALOG_LISTINGS], HANDLERS)
    app = FastAPI(
        title="Recall Alerts: recall intake",
        version="1.0.0",
        description="Sellers and operators create, publish, amend and close structured, versioned "
        "recalls.",
        lifespan=runtime.lifespan,
    )
    if settings.regulator_poll_interval_s > 0 and settings.regulator_urls():
        watcher = RegulatorWatcher(settings, runtime.session_factory)
        runtime.add_background("regulator-watcher", watcher.run)
    install_common(app, runtime)
    app.include_router(router)
    app.include_router(imports_router)
    return app
