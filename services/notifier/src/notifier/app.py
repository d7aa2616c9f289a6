"""notifier's composition root."""

from __future__ import annotations

from fastapi import FastAPI

from notifier.api import router
from notifier.handlers import HANDLERS
from notifier.sender import MailTransport, NoticeSender, SmtpTransport
from notifier.settings import Settings
from recall_shared.http import install_common
from recall_shared.service import ServiceRuntime
from recall_shared.topics import ALERTS, CUSTOMERS


def create_app(settings: Settings | None = None, transport: MailTransport | None = None) -> FastAPI:
    settings = settings or Settings()
    runtime = ServiceRuntime(settings)
    runtime.add_consumer([CUSTOMERS, ALERTS], HANDLERS)
    sender = NoticeSender(
        settings=settings, session_factory=runtime.session_factory, outbox=runtime.outbox, metrics=runtime.metrics,
        transport=transport or SmtpTransport(settings),
    )
    runtime.add_background("notice-sender", sender.run, stop=sender.stop)
    app = FastAPI(
        title="Recall Alerts: notifier",
        version="1.0.0",
        description="Sends one personal recall notice per affected customer, with updates and withdrawals.",
        lifespan=runtime.lifespan,
    )
    install_common(app, runtime)
    app.include_router(router)
    app.state.sender = sender
    return app
