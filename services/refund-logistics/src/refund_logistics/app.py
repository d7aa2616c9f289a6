"""refund-logistics' composition root."""

from __future__ import annotations

from fastapi import FastAPI

from recall_shared.http import install_common
from recall_shared.service import ServiceRuntime
from recall_shared.topics import ALERTS, RECALLS, REMEDIES
from refund_logistics.api import router
from refund_logistics.handlers import Cases
from refund_logistics.payments import HttpPaymentProvider, PaymentProvider, SandboxPaymentProvider
from refund_logistics.settings import Settings


def create_app(settings: Settings | None = None, payments: PaymentProvider | None = None) -> FastAPI:
    settings = settings or Settings()
    runtime = ServiceRuntime(settings)
    if payments is None:
        payments = (
            HttpPaymentProvider(settings.payment_base_url, settings.payment_api_key)
            if settings.payment_provider == "http"
            else SandboxPaymentProvider()
        )
    cases = Cases(runtime.outbox, payments, settings.case_fee)
    runtime.add_consumer([RECALLS, ALERTS, REMEDIES], cases.handlers())
    app = FastAPI(
        title="Recall Alerts: refund and returns logistics",
        version="1.0.0",
        description="Remedy cases run on the seller's behalf: refunds, return labels, replacements, repairs.",
        lifespan=runtime.lifespan,
    )
    install_common(app, runtime)
    app.include_router(router)
    return app
