"""Two seller dispatchers (two instances of the service) on one database: every webhook delivery
and every notice email is sent once, by one of them, never by both (rows are claimed with
``FOR UPDATE SKIP LOCKED``). The service's own dispatcher is off here; the two run side by side,
each with its own engine, against a loopback receiver that answers slowly enough for their claims
to overlap (its URL by name: the connection goes to the address checked, with the name as
Host), and the SMTP sink."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from recall_intake.models import (
    Seller,
    SellerContact,
    SellerNotice,
    WebhookDelivery,
    WebhookEndpoint,
)
from recall_intake.seller_dispatch import SellerDispatcher
from recall_intake.settings import Settings
from recall_shared.db import create_engine, create_session_factory

pytestmark = pytest.mark.integration

NOTICES = 30
ENDPOINTS = 2


@pytest.fixture
def intake_settings() -> dict[str, Any]:
    return {"seller_dispatch_interval_s": 0, "webhook_allow_private_networks": True}


async def test_two_dispatchers_send_each_delivery_and_email_once(
    intake: Any, loopback: Any
) -> None:
    received: Counter[str] = Counter()

    async def hook(request: Request) -> Response:
        assert request.headers["host"].startswith("localhost:")
        received[request.headers["recall-delivery-id"]] += 1
        await asyncio.sleep(0.02)
        return Response(status_code=204)

    run = uuid.uuid4().hex[:8]
    seller_id = f"seller-{run}"
    now = datetime.now(UTC)
    async with loopback(Starlette(routes=[Route("/hook", hook, methods=["POST"])])) as base:
        async with intake.session_factory() as session:
            session.add(Seller(seller_id=seller_id, name="Two instances"))
            await session.flush()
            session.add(SellerContact(seller_id=seller_id, email=f"{seller_id}@sellers.example"))
            endpoints = [str(uuid.uuid4()) for _ in range(ENDPOINTS)]
            for endpoint_id in endpoints:
                session.add(
                    WebhookEndpoint(
                        endpoint_id=endpoint_id,
                        seller_id=seller_id,
                        # By name: sent to the address it was checked at, Host kept.
                        url=f"{base.replace('127.0.0.1', 'localhost')}/hook",
                        secret="whsec_test",
                        created_at=now,
                    )
                )
            await session.flush()
            for i in range(NOTICES):
                notice_id = f"sn-{run}-{i}"
                session.add(
                    SellerNotice(
                        notice_id=notice_id,
                        recall_id=str(uuid.uuid4()),
                        seller_id=seller_id,
                        recall_version=1,
                        title=f"Recall {i}",
                        severity="high",
                        product_ids=[f"p-{i}"],
                        status="notified",
                        notified_at=now,
                        ack_due_at=now,
                        email_status="pending",
                        email_attempts=0,
                        email_next_at=now,
                        note="",
                    )
                )
                for endpoint_id in endpoints:
                    session.add(
                        WebhookDelivery(
                            delivery_id=f"whd-{notice_id}-{endpoint_id[:8]}",
                            endpoint_id=endpoint_id,
                            seller_id=seller_id,
                            event_type="seller_notice.created",
                            payload={"id": notice_id, "data": {}},
                            status="pending",
                            attempts=0,
                            next_attempt_at=now,
                            created_at=now,
                        )
                    )
            await session.commit()

        settings: Settings = intake.settings
        engines = [create_engine(settings) for _ in range(2)]
        try:
            dispatchers = [SellerDispatcher(settings, create_session_factory(e)) for e in engines]
            async with httpx.AsyncClient(timeout=10) as client:
                tries = await asyncio.gather(*(d.dispatch_once(client) for d in dispatchers))
        finally:
            for engine in engines:
                await engine.dispose()

    deliveries = NOTICES * ENDPOINTS
    assert sum(tries) == deliveries + NOTICES  # each webhook and each email tried once
    assert min(tries) > 0, tries  # both instances took a share
    assert len(received) == deliveries and set(received.values()) == {1}
    sent = await intake.scalar(
        "SELECT count(*) FROM seller_notices WHERE seller_id = :s AND email_status = 'sent'",
        s=seller_id,
    )
    assert sent == NOTICES
    delivered = await intake.scalar(
        "SELECT count(*) FROM webhook_deliveries WHERE seller_id = :s AND status = 'delivered'",
        s=seller_id,
    )
    attempts = await intake.scalar(
        "SELECT count(*) FROM webhook_attempts a JOIN webhook_deliveries d USING (delivery_id)"
        " WHERE d.seller_id = :s",
        s=seller_id,
    )
    assert delivered == deliveries and attempts == deliveries
