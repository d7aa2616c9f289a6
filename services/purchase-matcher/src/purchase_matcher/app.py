"""purchase-matcher's composition root."""

from __future__ import annotations

from fastapi import FastAPI

from purchase_matcher.api import router
from purchase_matcher.handlers import Matcher
from purchase_matcher.settings import Settings
from recall_shared.http import install_common
from recall_shared.service import ServiceRuntime
from recall_shared.topics import ORDERS, RECALLS


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    runtime = ServiceRuntime(settings)
    matcher = Matcher(runtime.outbox, lambda: runtime.producer)
    runtime.add_consumer([RECALLS, ORDERS], matcher.handlers())
    app = FastAPI(
        title="Recall Alerts: purchase matcher",
        version="1.0.0",
        description="Joins recalls with order history; one alert per affected customer and recall.",
        lifespan=runtime.lifespan,
    )
    install_common(app, runtime)
    app.include_router(router)
    return app
