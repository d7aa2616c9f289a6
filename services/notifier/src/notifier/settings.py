import hashlib
import hmac
from email.utils import parseaddr
from typing import Literal, Self

from pydantic import Field, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from notifier.render import usable_address
from recall_shared.http_settings import HttpServiceSettings

DeliveryGuarantee = Literal["at_least_once", "at_most_once"]


class Settings(HttpServiceSettings):
    model_config = SettingsConfigDict(env_prefix="NOTIFIER_", extra="ignore", frozen=True)

    service_name: str = "notifier"
    http_port: int = 8003
    database_url: str = "postgresql+asyncpg://notifier:notifier@127.0.0.1:5432/notifier"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    smtp_timeout_s: float = 10.0
    smtp_concurrency: int = Field(
        default=4,
        ge=1,
        description="Open SMTP connections to the relay (the pool size) = messages in flight at "
        "once",
    )
    smtp_idle_check_s: float = Field(
        default=30.0,
        ge=0,
        description="A pooled connection idle for longer is checked with NOOP before reuse",
    )
    smtp_max_messages_per_connection: int = Field(
        default=1000,
        ge=0,
        description="Reconnect after this many messages on one connection (0: never)",
    )
    mail_from: str = "Recall Alerts <recalls@recall-alerts.invalid>"
    customer_portal_url: str = "http://127.0.0.1:8005"
    send_max_attempts: int = Field(default=6, ge=1)
    send_backoff_initial_s: float = Field(default=5.0, gt=0)
    send_backoff_max_s: float = Field(default=3600.0, gt=0)
    send_lease_s: float = Field(
        default=300.0, gt=0, description="A claimed notice not recorded by then is retried"
    )
    send_batch_size: int = Field(default=100, ge=1, description="Notices claimed per batch")
    sender_poll_s: float = Field(default=2.0, gt=0)
    delivery_guarantee: DeliveryGuarantee = Field(
        default="at_least_once",
        description="What happens to a notice whose sender died while its SMTP transaction may "
        "have reached the relay: at_least_once re-sends it with the same Message-ID (a duplicate "
        "is possible, a lost safety notice is not); at_most_once records it as 'in_doubt' with a "
        "notification.failed.v1 and never re-sends it.",
    )
    reminder_schedule_days: tuple[float, ...] = Field(
        default=(7.0, 30.0),
        description="Reminders to customers who have neither chosen a remedy nor answered 'not "
        "affected', in days after the initial notice was sent; empty disables reminders",
    )
    bounce_address: str | None = Field(
        default=None,
        description="Where DSNs go: each notice's return path is this address with the notice id "
        "and a tag added (VERP, bounces+<id>.<tag>@domain). Default: bounces@ the domain of "
        "mail_from",
    )
    bounce_secret: str | None = Field(
        default=None,
        description="Key of the tag in each return path (only return paths we minted are taken); "
        "default: derived from api_key_pepper",
    )
    bounce_smtp_host: str = "127.0.0.1"
    bounce_smtp_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="Inbound SMTP for bounces (the MX of the bounce domain hands DSNs and "
        "feedback reports here); unset: not listening (0: any free port, for tests)",
    )
    soft_bounce_resends: int = Field(
        default=2, ge=0, description="A soft-bounced notice is sent again this many times"
    )
    soft_bounce_retry_s: float = Field(
        default=4 * 3600.0, gt=0, description="Wait before re-sending a soft-bounced notice"
    )
    mailgun_webhook_signing_key: str | None = Field(
        default=None,
        description="Mailgun's HTTP webhook signing key; unset: the Mailgun webhook answers 404",
    )
    mailgun_webhook_max_age_s: float = Field(
        default=900.0, gt=0, description="Older signed webhook requests are refused (replays)"
    )
    sms_provider: Literal["none", "twilio"] = Field(
        default="none",
        description="The SMS channel: none (email only), or Twilio's Messages API at "
        "twilio_base_url (the local sandbox: python -m notifier.sms_sandbox)",
    )
    twilio_base_url: str = "https://api.twilio.com"
    twilio_account_sid: str = ""
    twilio_auth_token: str = Field(
        default="", description="Signs the status callbacks too (X-Twilio-Signature)"
    )
    twilio_from: str = Field(default="", description="The sending number (E.164) or sender id")
    public_url: str = Field(
        default="http://127.0.0.1:8003",
        description="This service's URL as the SMS provider reaches it (status callbacks; the "
        "signature covers it, so it must be the exact URL the provider calls)",
    )
    sms_batch_size: int = Field(default=50, ge=1)
    sms_concurrency: int = Field(default=8, ge=1, description="SMS API requests in flight")
    sms_poll_s: float = Field(default=2.0, gt=0)
    unreachable_refresh_s: float = Field(
        default=30.0, gt=0, description="How often the unreachable-customers gauge is recounted"
    )
    remedy_reminder_days: tuple[float, ...] = Field(
        default=(7.0, 21.0),
        description="Reminders to customers whose remedy waits for them (the photo of the "
        "destroyed unit, the returned item), in days after the wait began; empty disables them",
    )
    reminder_poll_s: float = Field(
        default=60.0, gt=0, description="How often the reminder scheduler looks for due reminders"
    )
    # Postal letters (issue 15, letter_batch.py): the last channel, for customers no digital one
    # can reach.
    letter_dir: str | None = Field(
        default=None,
        description="Where the daily letter batches are written (one folder per batch: a PDF per "
        "customer and manifest.csv for the mail house); unset: no letters",
    )
    letter_batch_hour: int | None = Field(
        default=5,
        ge=0,
        le=23,
        description="The hour (UTC, by the service's clock) the service writes the day's letter "
        "batch; None: only `notifier letter-batch` writes batches (e.g. from cron)",
    )
    letter_batch_poll_s: float = Field(
        default=300.0, gt=0, description="How often the service checks whether a batch is due"
    )
    letter_return_address: str = Field(
        default="Recall Alerts, Returns, 10115 Berlin, DE",
        description="The sender printed above the address window (one line)",
    )
    fallback_when_unconfirmed: bool = Field(
        default=False,
        description="Follow a sent email or SMS that nothing confirmed within the channel "
        "policy's days on the next channel. Turn on where deliveries are reported (the Mailgun "
        "webhook, a relay that sends success DSNs): otherwise every email looks unconfirmed",
    )
    unconfirmed_poll_s: float = Field(
        default=300.0,
        gt=0,
        description="How often sent notices not confirmed delivered are checked for the "
        "channel policy's fall back after N days",
    )

    @field_validator("reminder_schedule_days", "remedy_reminder_days")
    @classmethod
    def _ascending(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if any(d <= 0 for d in v) or list(v) != sorted(set(v)):
            raise ValueError("reminder schedules must be positive and strictly ascending")
        return v

    @model_validator(mode="after")
    def _usable_combination(self) -> Self:
        """Refuse to start on settings with which no notice could go out, naming the variable."""
        if (self.smtp_username is None) != (self.smtp_password is None):
            given, missing = (
                ("smtp_username", "smtp_password")
                if self.smtp_password is None
                else ("smtp_password", "smtp_username")
            )
            raise ValueError(f"{self._var(missing)} must be set with {self._var(given)}")
        if not usable_address(parseaddr(self.mail_from)[1]):
            raise ValueError(f"{self._var('mail_from')} is not a usable sender: {self.mail_from!r}")
        if self.bounce_address is not None and not usable_address(self.bounce_address):
            raise ValueError(f"{self._var('bounce_address')} is not a usable address")
        if self.sms_provider == "twilio":
            for name in ("twilio_account_sid", "twilio_auth_token", "twilio_from"):
                if not getattr(self, name):
                    raise ValueError(f"{self._var(name)} must be set with sms_provider=twilio")
        if not self.customer_portal_url.startswith(("https://", "http://")):
            raise ValueError(f"{self._var('customer_portal_url')} must be an http(s) URL")
        if self.send_backoff_initial_s > self.send_backoff_max_s:
            raise ValueError(
                f"{self._var('send_backoff_initial_s')} must not exceed "
                f"{self._var('send_backoff_max_s')}"
            )
        return self

    @property
    def letters_available(self) -> bool:
        """Whether letters are a channel here (a batch folder is configured)."""
        return bool(self.letter_dir)

    @property
    def bounce_mailbox(self) -> str:
        """The bounce address in use (see ``bounce_address``)."""
        if self.bounce_address:
            return self.bounce_address
        return "bounces@" + parseaddr(self.mail_from)[1].rpartition("@")[2]

    @property
    def verp_key(self) -> str:
        """The key of the return-path tags: ``bounce_secret``, else one derived from the pepper
        (which is refused outside development when weak)."""
        if self.bounce_secret:
            return self.bounce_secret
        return hmac.new(self.api_key_pepper.encode(), b"notifier.verp", hashlib.sha256).hexdigest()

    def _var(self, field: str) -> str:
        return f"{self.model_config.get('env_prefix', '')}{field}".upper()
