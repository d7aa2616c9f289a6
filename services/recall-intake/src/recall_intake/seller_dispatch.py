"""Sends what seller notices queue: each notice's email (SMTP) and every webhook delivery (httpx,
signed as Stripe signs: ``Recall-Signature: t=<unix time>,v1=<HMAC-SHA256 of "t.body">``).

A failed try (no answer, a non-2xx, an SMTP error) is tried again after a capped, jittered,
doubling delay (domain.retry_delay_s), up to ``webhook_max_attempts``; then the delivery or the
email is ``failed``. Every webhook try is logged (``webhook_attempts``). A webhook goes to the
address its host was checked at (``pinned``: no second lookup, so no DNS rebinding onto a private
address). Work is claimed one row at a time with ``FOR UPDATE SKIP LOCKED``, so several instances
never send the same thing at once.
"""

from __future__ import annotations

import asyncio
import logging
import random
import smtplib
import time
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import httpx
import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from recall_intake.domain import (
    delivered,
    retry_delay_s,
    webhook_address_allowed,
    webhook_signature,
)
from recall_intake.models import (
    SellerContact,
    SellerNotice,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from recall_intake.settings import Settings
from recall_shared.service import ServiceRuntime
from recall_shared.waits import wait_set

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "Recall-Signature"


def pinned(url: str, address: str | None) -> tuple[str, dict[str, str], dict[str, str]]:
    """The request to ``url`` sent to ``address`` (the one checked): the URL with that address as
    its host, the ``Host`` header of the URL's name, and its name for TLS (SNI and the certificate
    check). Unchanged when there is no address."""
    parsed = httpx.URL(url)
    if address is None or address == parsed.host:
        return url, {}, {}
    host = parsed.host if parsed.port is None else f"{parsed.host}:{parsed.port}"
    extensions = {"sni_hostname": parsed.host} if parsed.scheme == "https" else {}
    return str(parsed.copy_with(host=address)), {"Host": host}, extensions


class SellerDispatcher:
    def __init__(
        self, settings: Settings, session_factory: async_sessionmaker[AsyncSession]
    ) -> None:
        self.settings = settings
        self.session_factory = session_factory
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self, runtime: ServiceRuntime) -> None:
        """Background task: send what is due every ``seller_dispatch_interval_s``, until stopped
        (a try under way is finished first)."""
        async with httpx.AsyncClient(timeout=self.settings.webhook_timeout_s) as client:
            while not self._stopping.is_set():
                try:
                    await self.dispatch_once(client)
                except Exception:
                    log.exception("seller dispatch failed")
                await wait_set(self._stopping, self.settings.seller_dispatch_interval_s)

    async def dispatch_once(self, client: httpx.AsyncClient) -> int:
        """Send everything due now; returns how many tries were made."""
        tries = 0
        while not self._stopping.is_set() and await self._next_webhook(client):
            tries += 1
        while not self._stopping.is_set() and await self._next_email():
            tries += 1
        return tries

    def _retry_at(self, attempts: int, now: datetime) -> datetime | None:
        """When to try again after ``attempts`` failed tries; None when out of attempts."""
        s = self.settings
        if attempts >= s.webhook_max_attempts:
            return None
        wait = retry_delay_s(
            attempts, s.webhook_backoff_initial_s, s.webhook_backoff_max_s, random.random()
        )
        return now + timedelta(seconds=wait)

    # ------------------------------------------------------------------ webhooks

    async def _next_webhook(self, client: httpx.AsyncClient) -> bool:
        async with self.session_factory() as session:
            row = (
                await session.execute(
                    select(WebhookDelivery, WebhookEndpoint.url, WebhookEndpoint.secret)
                    .join(WebhookEndpoint)
                    .where(
                        WebhookDelivery.status == "pending",
                        WebhookDelivery.next_attempt_at <= datetime.now(UTC),
                    )
                    .order_by(WebhookDelivery.next_attempt_at)
                    .limit(1)
                    .with_for_update(of=WebhookDelivery, skip_locked=True)
                )
            ).first()
            if row is None:
                return False
            delivery, url, secret = row
            body = orjson.dumps(delivery.payload)
            headers = {
                "Content-Type": "application/json",
                SIGNATURE_HEADER: webhook_signature(secret, int(time.time()), body),
                "Recall-Delivery-Id": delivery.delivery_id,
            }
            started = time.monotonic()
            status_code: int | None = None
            error: str | None = None
            refused, addresses = await self._resolve(url)
            try:
                if refused:
                    error = refused
                else:
                    response = await self._post(client, url, addresses, body, headers)
                    status_code = response.status_code
                    if not delivered(status_code):
                        error = f"answered {status_code}"
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"[:2000]
            now = datetime.now(UTC)
            delivery.attempts += 1
            session.add(
                WebhookAttempt(
                    delivery_id=delivery.delivery_id,
                    attempt=delivery.attempts,
                    attempted_at=now,
                    status_code=status_code,
                    error=error,
                    duration_ms=int((time.monotonic() - started) * 1000),
                )
            )
            delivery.last_status_code = status_code
            delivery.last_error = error
            if error is None:
                delivery.status, delivery.delivered_at = "delivered", now
            elif refused or (retry_at := self._retry_at(delivery.attempts, now)) is None:
                delivery.status = "failed"
            else:
                delivery.next_attempt_at = retry_at
            await session.commit()
            return True

    async def _resolve(self, url: str) -> tuple[str | None, list[str | None]]:
        """Why a URL may not be called (its host resolves to an address not allowed), or None; and
        the addresses to connect to, checked, IPv4 first ([None]: unresolvable, the POST fails and
        is retried). The connection goes to one of them, not to a second lookup, so a name that
        resolves to a public address for the check and to a private one after (DNS rebinding) is
        not followed."""
        host = httpx.URL(url).host
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, None)
        except OSError:
            return None, [None]
        allow = self.settings.webhook_allow_private_networks
        addresses = sorted(dict.fromkeys(str(i[4][0]) for i in infos), key=lambda a: ":" in a)
        bad = sorted({a for a in addresses if not webhook_address_allowed(a, allow)})
        if bad:
            return f"refused: {host} resolves to {', '.join(bad)}, not a public address", []
        return None, [*addresses] or [None]

    async def _post(
        self,
        client: httpx.AsyncClient,
        url: str,
        addresses: list[str | None],
        body: bytes,
        headers: dict[str, str],
    ) -> httpx.Response:
        """POST to the first of the addresses that takes the connection."""
        for i, address in enumerate(addresses):
            target, host, extensions = pinned(url, address)
            try:
                return await client.post(
                    target, content=body, headers={**headers, **host}, extensions=extensions
                )
            except httpx.ConnectError:
                if i == len(addresses) - 1:
                    raise
        raise AssertionError("no address to try")

    # ------------------------------------------------------------------ email

    async def _next_email(self) -> bool:
        async with self.session_factory() as session:
            row = (
                await session.execute(
                    select(SellerNotice, SellerContact.email)
                    .outerjoin(SellerContact, SellerContact.seller_id == SellerNotice.seller_id)
                    .where(
                        SellerNotice.email_status == "pending",
                        SellerNotice.email_next_at <= datetime.now(UTC),
                    )
                    .order_by(SellerNotice.email_next_at)
                    .limit(1)
                    .with_for_update(of=SellerNotice, skip_locked=True)
                )
            ).first()
            if row is None:
                return False
            notice, address = row
            if address is None:
                notice.email_status = "no_contact"  # the webhook, and the API, still tell it
                await session.commit()
                return True
            try:
                await asyncio.to_thread(self._send_mail, self._message(notice, address))
            except (OSError, smtplib.SMTPException) as exc:
                notice.email_attempts += 1
                notice.email_error = f"{type(exc).__name__}: {exc}"[:2000]
                retry_at = self._retry_at(notice.email_attempts, datetime.now(UTC))
                if retry_at is None:
                    notice.email_status = "failed"
                else:
                    notice.email_next_at = retry_at
            else:
                notice.email_attempts += 1
                notice.email_status, notice.email_error = "sent", None
            await session.commit()
            return True

    def _message(self, notice: SellerNotice, address: str) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = self.settings.seller_notice_from
        msg["To"] = address
        listings = "\n".join(f"  - {p}" for p in notice.product_ids)
        if notice.updates == 0:
            msg["Subject"] = f"Stop selling: {notice.title} (recall {notice.recall_id})"
            msg["Message-ID"] = f"<{notice.notice_id}@recall-intake>"
            opening = f"A recall ({notice.severity}) reaches your listings:\n{listings}\n\n"
        else:  # an update: the listings it added first, so they are not missed
            msg["Subject"] = (
                f"More listings to stop selling: {notice.title} (recall {notice.recall_id})"
            )
            msg["Message-ID"] = f"<{notice.notice_id}.{notice.updates}@recall-intake>"
            msg["References"] = f"<{notice.notice_id}@recall-intake>"
            added = "\n".join(f"  - {p}" for p in notice.added_product_ids)
            opening = (
                f"The recall ({notice.severity}) now reaches more of your listings:\n{added}\n\n"
                f"All the listings it reaches:\n{listings}\n\n"
            )
        msg.set_content(
            opening + "They are suppressed: stop selling them and remove the stock from sale.\n"
            f"Acknowledge this notice by {notice.ack_due_at:%Y-%m-%d %H:%M} UTC:\n"
            f"  POST /v1/seller-notices/{notice.notice_id}/acknowledgement\n"
            "and confirm the removal when done:\n"
            f"  POST /v1/seller-notices/{notice.notice_id}/removal-confirmation\n"
        )
        return msg

    def _send_mail(self, message: EmailMessage) -> None:
        s = self.settings
        with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout_s) as smtp:
            smtp.send_message(message)
