"""customer-api's composition root."""

from __future__ import annotations

from fastapi import FastAPI

from customer_api.api import router
from customer_api.handlers import HANDLERS
from customer_api.hot_path import BannerHotPath
from customer_api.pages import MAX_FORM_BYTES, SESSION_COOKIE, install_pages
from customer_api.proof_upload import PROOF_UPLOAD_PATH, upload_body_limit
from customer_api.proof_upload import router as proof_upload_router
from customer_api.public_handlers import PUBLIC_RECALL_HANDLERS
from customer_api.public_pages import router as public_router
from customer_api.reads import APPLICATION_NAME, ReadPool
from customer_api.rls_client import RefundLogisticsClient
from customer_api.settings import Settings
from customer_api.views import ViewRecorder
from recall_shared.auth import CustomerTokenVerifier
from recall_shared.http import install_common
from recall_shared.service import ServiceRuntime
from recall_shared.topics import ALERTS, NOTIFICATIONS, RECALLS, REMEDIES

PAGE_FORMS = r"/recalls/[^/]+/(remedy|acknowledge|not-affected|label-check)|/signout"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    runtime = ServiceRuntime(settings)
    runtime.add_consumer([ALERTS, REMEDIES, NOTIFICATIONS], HANDLERS)
    # The public recall pages' read model: every published recall, no customer data.
    runtime.add_consumer([RECALLS], PUBLIC_RECALL_HANDLERS, group_suffix=".public-recalls")
    app = FastAPI(
        title="Recall Alerts: customer alerts API",
        version="1.0.0",
        description="The signed-in customer's recalls and product safety alerts, the orders-page "
        "banner, and remedy choices. Every route is scoped to the customer in the bearer JWT.",
        lifespan=runtime.lifespan,
    )
    app.state.token_verifier = CustomerTokenVerifier(
        secret=None if settings.jwt_public_key else settings.jwt_secret,
        public_key=settings.jwt_public_key,
        audience=settings.jwt_audience,
        issuer=settings.jwt_issuer,
        cache_size=settings.jwt_cache_size,
        max_lifetime_s=settings.jwt_max_lifetime_s,
    )
    # The hot read routes' own asyncpg pool (customer_api.reads), closed when the runtime stops.
    read_pool = ReadPool(settings.database_url, APPLICATION_NAME)
    runtime.add_background("read-pool", read_pool.run, stop=read_pool.stop)
    app.state.read_pool = read_pool
    app.state.view_recorder = ViewRecorder(runtime, settings.view_write_timeout_ms)
    app.state.banner_cache_control = f"private, max-age={settings.banner_max_age_s}"
    app.add_middleware(
        BannerHotPath
    )  # added before install_common's middleware, so it runs inside it
    # The pages' forms are small (a CSRF token, a remedy, a short reason): bounded far below the
    # JSON default. The session cookie carries the customer token, so a form post counts against its
    # rate limit.
    install_common(
        app,
        runtime,
        body_limits={
            PAGE_FORMS: MAX_FORM_BYTES,
            PROOF_UPLOAD_PATH: upload_body_limit(settings.proof_max_bytes),
        },
        session_cookies=(SESSION_COOKIE,),
    )
    app.include_router(router)
    install_pages(app)  # the customer's HTML pages: /orders, /recalls, /signin ...
    app.state.refund_logistics = RefundLogisticsClient(
        settings.refund_logistics_url, settings.refund_logistics_timeout_s
    )
    app.include_router(proof_upload_router)  # the page's proof of destruction upload
    app.include_router(public_router)  # /public/recalls: anyone's, without sign-in
    return app
