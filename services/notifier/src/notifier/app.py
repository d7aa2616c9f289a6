"""notifier's composition root."""

from __future__ import annotations

from fastapi import FastAPI

from notifier.api import router
from notifier.bounce_listener import BounceListener
from notifier.clock import Clock, SystemClock
from notifier.delivery import DeliveryRecorder
from notifier.handlers import HANDLERS
from notifier.letter_batch import LetterBatcher
from notifier.metrics import STATE_GAUGES
from notifier.models import SellerKey
from notifier.reminders import ReminderScheduler
from notifier.sender import FaultHook, NoticeSender
from notifier.settings import Settings
from notifier.sms import SmsProvider, TwilioSms
from notifier.sms_sender import SmsSender
from notifier.smtp_pool import MailTransport, SmtpTransport
from notifier.unconfirmed import UnconfirmedFollowUp
from notifier.unreachable import UnreachableGauge
from notifier.unreachable import router as unreachable_router
from notifier.views import VIEW_HANDLERS
from notifier.webhook import router as webhook_router
from recall_shared.api_keys import key_handlers
from recall_shared.http import install_common
from recall_shared.service import ServiceRuntime
from recall_shared.topics import ALERT_VIEWS, ALERTS, CUSTOMERS, REMEDIES, SELLERS


def create_app(
    settings: Settings | None = None,
    transport: MailTransport | None = None,
    *,
    clock: Clock | None = None,
    fault: FaultHook | None = None,
    sms: SmsProvider | None = None,
) -> FastAPI:
    settings = settings or Settings()
    clock = clock or SystemClock()
    if sms is None and settings.sms_provider == "twilio":
        sms = TwilioSms(
            account_sid=settings.twilio_account_sid,
            auth_token=settings.twilio_auth_token,
            from_=settings.twilio_from,
            base_url=settings.twilio_base_url,
        )
    runtime = ServiceRuntime(settings)
    runtime.metrics.add_state_gauges(STATE_GAUGES)
    runtime.add_consumer([CUSTOMERS, ALERTS, REMEDIES, ALERT_VIEWS], {**HANDLERS, **VIEW_HANDLERS})
    # Operator keys (hashes) for the read API, on their own consumer group: a new or revoked key
    # takes effect without waiting behind an alert backlog.
    runtime.add_consumer([SELLERS], key_handlers(SellerKey), group_suffix=".sellers")
    sender = NoticeSender(
        settings=settings,
        session_factory=runtime.session_factory,
        outbox=runtime.outbox,
        metrics=runtime.metrics,
        transport=transport or SmtpTransport(settings),
        clock=clock,
        fault=fault,
        tracer=runtime.telemetry.tracer,
        sms_available=sms is not None,
    )
    runtime.add_background("notice-sender", sender.run, stop=sender.stop)
    sms_sender: SmsSender | None = None
    if sms is not None:
        sms_sender = SmsSender(
            settings=settings,
            session_factory=runtime.session_factory,
            outbox=runtime.outbox,
            provider=sms,
            clock=clock,
            tracer=runtime.telemetry.tracer,
        )
        runtime.add_background("sms-sender", sms_sender.run, stop=sms_sender.stop)
    delivery = DeliveryRecorder(
        settings=settings,
        session_factory=runtime.session_factory,
        outbox=runtime.outbox,
        registry=runtime.metrics.registry,
        sms_available=sms is not None,
    )
    bounces: BounceListener | None = None
    if settings.bounce_smtp_port is not None:
        bounces = BounceListener(settings=settings, recorder=delivery, clock=clock)
        runtime.add_background("bounce-listener", bounces.run, stop=bounces.stop)
    unreachable = UnreachableGauge(
        settings=settings,
        session_factory=runtime.session_factory,
        registry=runtime.metrics.registry,
    )
    runtime.add_background("unreachable-gauge", unreachable.run, stop=unreachable.stop)
    reminders = ReminderScheduler(
        settings=settings, session_factory=runtime.session_factory, clock=clock
    )
    runtime.add_background("reminder-scheduler", reminders.run, stop=reminders.stop)
    letters: LetterBatcher | None = None
    if settings.letters_available:
        letters = LetterBatcher(
            settings=settings,
            session_factory=runtime.session_factory,
            outbox=runtime.outbox,
            clock=clock,
            tracer=runtime.telemetry.tracer,
        )
        runtime.add_background("letter-batch", letters.run, stop=letters.stop)
    unconfirmed: UnconfirmedFollowUp | None = None
    if settings.fallback_when_unconfirmed:
        unconfirmed = UnconfirmedFollowUp(
            settings=settings,
            session_factory=runtime.session_factory,
            sms_available=sms is not None,
            clock=clock,
        )
        runtime.add_background("unconfirmed-follow-up", unconfirmed.run, stop=unconfirmed.stop)
    app = FastAPI(
        title="Recall Alerts: notifier",
        version="1.0.0",
        description="Sends one personal recall notice per affected customer, with updates, "
        "withdrawals and reminders. The read API (notices and reminders of an alert, for operators "
        "and customer service) takes an operator's API key (X-Api-Key).",
        lifespan=runtime.lifespan,
    )
    install_common(app, runtime)
    app.include_router(router)
    app.include_router(webhook_router)
    app.include_router(unreachable_router)
    app.state.sender = sender
    app.state.reminders = reminders
    app.state.delivery = delivery
    app.state.sms_sender = sms_sender
    app.state.unreachable = unreachable
    app.state.bounces = bounces
    app.state.letters = letters
    app.state.unconfirmed = unconfirmed
    app.state.settings = settings
    app.state.clock = clock
    return app
