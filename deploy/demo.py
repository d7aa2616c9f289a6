"""A small demo data set for ``make run``: a catalog, four customers, their orders and one recall.

Upstream data (catalog listings, customers, orders) is published on the upstream topics as the
platform's own systems would; the recall is posted through recall-intake's API with a seller key.
Running it twice changes nothing: event ids and the recall's Idempotency-Key are fixed.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import httpx

from recall_shared import events as ev
from recall_shared.auth import issue_customer_token
from recall_shared.envelope import wrap
from recall_shared.event_ids import event_id
from recall_shared.kafka import create_client_producer
from recall_shared.settings import INSECURE_DEFAULT

if TYPE_CHECKING:
    from devstack import Stack


NOW = datetime.now(UTC).replace(microsecond=0)

LISTINGS = [
    ev.ListingUpdated(
        product_id="acme-kettle-k1",
        title="ACME Electric Kettle K1, 1.7 l",
        brand="ACME",
        gtins=["04006381333931"],
        model_numbers=["K1-1700"],
        seller_ids=["acme-home"],
    ),
    ev.ListingUpdated(
        product_id="acme-toaster-t2",
        title="ACME Toaster T2",
        brand="ACME",
        gtins=["04006381333948"],
        model_numbers=["T2"],
        seller_ids=["acme-home"],
    ),
    ev.ListingUpdated(
        product_id="zeta-lamp-l9",
        title="Zeta Desk Lamp L9",
        brand="Zeta",
        gtins=["04012345678901"],
        model_numbers=["L9"],
        seller_ids=["zeta-lights"],
    ),
]

CUSTOMERS = [
    ev.CustomerUpdated(
        customer_id="alice", name="Alice Example", email="alice@example.test", locale="en"
    ),
    ev.CustomerUpdated(
        customer_id="bruno", name="Bruno Beispiel", email="bruno@example.test", locale="de"
    ),
    ev.CustomerUpdated(
        customer_id="carol",
        name="Carol Business",
        email="carol@example.test",
        safety_email="safety@carol-gmbh.example.test",
        locale="de",
    ),
    ev.CustomerUpdated(
        customer_id="dave", name="Dave Admin", email="dave@carol-gmbh.example.test", locale="en"
    ),
]


def _line(
    line_id: str,
    product: str,
    title: str,
    price: str,
    qty: int = 1,
    seller: str = "acme-home",
    **kw: Any,
) -> ev.OrderLine:
    return ev.OrderLine(
        line_id=line_id,
        product_id=product,
        title=title,
        seller_id=seller,
        quantity=qty,
        unit_price=Decimal(price),
        currency="EUR",
        **kw,
    )


ORDERS = [
    ev.OrderPlaced(
        order_id="demo-o-1001",
        customer_id="alice",
        placed_at=NOW - timedelta(days=40),
        lines=[
            _line(
                "demo-l-1",
                "acme-kettle-k1",
                "ACME Electric Kettle K1, 1.7 l",
                "39.99",
                gtin="04006381333931",
                model_number="K1-1700",
            ),
            _line("demo-l-2", "zeta-lamp-l9", "Zeta Desk Lamp L9", "24.50", seller="zeta-lights"),
        ],
    ),
    ev.OrderPlaced(
        order_id="demo-o-1002",
        customer_id="bruno",
        placed_at=NOW - timedelta(days=20),
        lines=[
            _line("demo-l-3", "acme-toaster-t2", "ACME Toaster T2", "29.00"),
        ],
    ),
    ev.OrderPlaced(
        order_id="demo-o-1003",
        customer_id="carol",
        placed_at=NOW - timedelta(days=10),
        lines=[
            _line(
                "demo-l-4",
                "acme-kettle-k1",
                "ACME Electric Kettle K1, 1.7 l",
                "37.90",
                qty=3,
                gtin="04006381333931",
            ),
        ],
        business_account_admin_id="dave",
    ),
]

RECALL = {
    "content": {
        "kind": "recall",
        "title": "ACME Electric Kettle K1",
        "product_description": (
            "1.7 litre electric kettle, white, model K1-1700, sold since January."
        ),
        "hazard": (
            "The lid can open while the water boils. "
            "Boiling water can spill and cause serious burns."
        ),
        "severity": "high",
        "stop_using": "Stop using the kettle and unplug it.",
        "remedies": [
            {
                "type": "refund_on_destruction",
                "instructions": "Cut the power cord and upload a photo.",
            },
            {
                "type": "refund_with_return",
                "instructions": "Pack the kettle; we send a prepaid label.",
            },
        ],
        "consumer_contact": "ACME Home, recall line +49 30 0000000, recall@acme-home.example.test",
    },
    "rules": [{"product_ids": ["acme-kettle-k1"]}],
    "logistics_enrolled": True,
}


async def publish_upstream(bootstrap: str, prefix: str) -> None:
    producer = create_client_producer(bootstrap, "demo-loader")
    await producer.start()
    try:
        for i, event in enumerate([*LISTINGS, *CUSTOMERS, *ORDERS]):
            env = wrap(
                event,
                source="/recall-alerts/demo-loader",
                event_id=event_id("demo", event.event_type, event.partition_key(), i),
            )
            await producer.send_and_wait(
                prefix + event.topic,
                env.data,
                key=event.partition_key().encode(),
                headers=env.headers(),
            )
    finally:
        await producer.stop()


async def load_demo(stack: Stack) -> dict[str, Any]:
    from devstack import SERVICES

    intake = SERVICES[0]
    operator_key = stack.run_cli(
        intake, "issue-api-key", "--label", "demo operator", capture=True
    ).splitlines()[-1]
    stack.run_cli(intake, "register-seller", "acme-home", "--name", "ACME Home", "--exist-ok")
    seller_key = stack.run_cli(
        intake, "issue-api-key", "--seller-id", "acme-home", "--label", "demo", capture=True
    ).splitlines()[-1]
    await publish_upstream(
        stack.env.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
        stack.env.get("RECALL_ALERTS_TOPIC_PREFIX", ""),
    )
    # The key follows the body: a changed demo recall is a new recall, not a refused retry.
    body_key = hashlib.sha256(json.dumps(RECALL, sort_keys=True).encode()).hexdigest()[:16]
    headers = {"X-Api-Key": seller_key, "Idempotency-Key": f"demo-kettle-recall-{body_key}"}
    async with httpx.AsyncClient(base_url=stack.url("recall-intake"), timeout=10) as client:
        # recall-intake learns who sells the kettle from catalog.listings.v1: until it has read the
        # listing it answers 409 not_known_yet with a Retry-After.
        for _ in range(60):
            r = await client.post("/v1/recalls", json=RECALL, headers=headers)
            if r.status_code != 409:
                break
            await asyncio.sleep(float(r.headers.get("Retry-After", "1")))
        r.raise_for_status()
        recall = r.json()
        if recall["status"] == "draft":
            (
                await client.post(
                    f"/v1/recalls/{recall['recall_id']}/publish", headers={"X-Api-Key": seller_key}
                )
            ).raise_for_status()
    secret = stack.env.get("RECALL_ALERTS_JWT_SECRET") or INSECURE_DEFAULT
    tokens = {c.customer_id: issue_customer_token(c.customer_id, secret) for c in CUSTOMERS}
    return {
        "operator_key": operator_key,
        "seller_key": seller_key,
        "recall_id": recall["recall_id"],
        "tokens": tokens,
    }
