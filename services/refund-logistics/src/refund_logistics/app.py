"""refund-logistics' composition root."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI

from recall_shared.api_keys import key_handlers
from recall_shared.auth import CustomerTokenVerifier
from recall_shared.http import install_common
from recall_shared.service import ServiceRuntime
from recall_shared.topics import ALERT_VIEWS, ALERTS, NOTIFICATIONS, RECALLS, REMEDIES, SELLERS
from refund_logistics.api import PROOF_PATH, install_errors, proof_body_limit, router
from refund_logistics.carrier import Carrier, HttpCarrier, SandboxCarrier
from refund_logistics.handlers import Cases
from refund_logistics.http_retry import IdempotentHttpParty
from refund_logistics.metrics import STATE_GAUGES
from refund_logistics.models import SellerKey
from refund_logistics.payments import HttpPaymentProvider, PaymentProvider, SandboxPaymentProvider
from refund_logistics.settings import Settings
from refund_logistics.viewed import VIEW_HANDLERS


def create_app(
    settings: Settings | None = None,
    payments: PaymentProvider | None = None,
    carrier: Carrier | None = None,
) -> FastAPI:
    settings = settings or Settings()
    runtime = ServiceRuntime(settings)
    runtime.metrics.add_state_gauges(STATE_GAUGES)
    if payments is None:
        payments = (
            HttpPaymentProvider(settings.payment_base_url, settings.payment_api_key)
            if settings.payment_provider == "http"
            else SandboxPaymentProvider()
        )
    if carrier is None:
        carrier = (
            HttpCarrier(settings.carrier_base_url, settings.carrier_api_key)
            if settings.carrier == "http"
            else SandboxCarrier()
        )
    for party in (payments, carrier):  # their outgoing HTTP traced, when tracing is on
        if isinstance(party, IdempotentHttpParty):
            runtime.telemetry.instrument_httpx(party.client)
    cases = Cases(
        runtime.outbox,
        payments,
        settings.case_fee,
        carrier=carrier,
        session_factory=runtime.session_factory,
        refund_lease_s=settings.refund_lease_s,
        return_warehouse=settings.return_warehouse,
        pay_without_review_up_to=settings.proof_pay_without_review_up_to,
    )
    runtime.add_consumer(
        [RECALLS, ALERTS, REMEDIES, NOTIFICATIONS, ALERT_VIEWS],
        {**cases.handlers(), **VIEW_HANDLERS},
    )
    # Keys on their own consumer group, so a new key works without waiting behind an alert backlog.
    runtime.add_consumer([SELLERS], key_handlers(SellerKey), group_suffix=".sellers")
    stopping = asyncio.Event()

    async def recovery(_: ServiceRuntime) -> None:
        stopping.clear()
        await cases.recovery_loop(settings.refund_recovery_interval_s, stopping)

    runtime.add_background("refund-recovery", recovery, stop=stopping.set)
    app = FastAPI(
        title="Recall Alerts: refund and returns logistics",
        version="1.0.0",
        description="Remedy cases run on the seller's behalf: refunds, return labels, "
        "replacements, repairs; enrolment and effectiveness reports for sellers.",
        lifespan=runtime.lifespan,
    )
    install_common(
        app, runtime, body_limits={PROOF_PATH: proof_body_limit(settings.proof_max_bytes)}
    )
    install_errors(app)
    app.state.cases = cases
    app.state.token_verifier = CustomerTokenVerifier(
        secret=None if settings.jwt_public_key else settings.jwt_secret,
        public_key=settings.jwt_public_key,
        audience=settings.jwt_audience,
        issuer=settings.jwt_issuer,
        max_lifetime_s=settings.jwt_max_lifetime_s,
    )
    app.include_router(router)
    return app
