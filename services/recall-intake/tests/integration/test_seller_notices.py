"""Seller notices end to end: stop_sales.v1 and alerts.v1 on real Kafka, the service's PostgreSQL,
the SMTP sink, and a webhook receiver over HTTP on loopback (the conftest's ``loopback``) that
checks the Recall-Signature itself (HMAC-SHA256 over "t.body", as Stripe signs) and answers 500 to
the first delivery.

Covered: a stop-sale declared for a seller's listing gives that seller one notice (a second listing
of the recall joins it), an email and a signed webhook, retried after the 500, both tries in the
delivery log; an operator lists the notice as unacknowledged once it is due, and no more after the
seller acknowledges; removal confirmation and closeout are recorded; a sale after the recall lands
in the operators' incident queue, the seller's incidents and report, and the seller's webhook; an
amendment that adds a listing tells its seller again (an update, once) and a seller newly reached
its notice, while a listing re-declared with no more to do tells nobody, and one stopped again after
a lift is news again; a notice that found no address is emailed once the seller gives one."""

from __future__ import annotations

import asyncio
import email
import email.policy
import hashlib
import hmac
import os
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from recall_shared import envelope
from recall_shared import events as ev
from recall_shared.testing import eventually

pytestmark = pytest.mark.integration

Intake = Any  # the conftest's Intake (a test module cannot import its conftest)
SINK_VIEWER = os.environ.get("SMTP_SINK_VIEWER", "http://127.0.0.1:8025")


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@dataclass
class Receiver:
    """A seller's webhook endpoint: verifies each request's signature with the secret it was given,
    answers ``fail_first`` 500s, then 200s."""

    secret: str = ""
    fail_first: int = 1
    received: list[dict[str, Any]] = field(default_factory=list)

    def verified(self, header: str, body: bytes) -> bool:
        fields = dict(part.split("=", 1) for part in header.split(","))
        signed = fields["t"].encode() + b"." + body
        expected = hmac.new(self.secret.encode(), signed, hashlib.sha256).hexdigest()
        fresh = abs(time.time() - int(fields["t"])) < 300
        return fresh and hmac.compare_digest(expected, fields["v1"])

    async def hook(self, request: Request) -> Response:
        body = await request.body()
        self.received.append(
            {
                "verified": self.verified(request.headers["recall-signature"], body),
                "body": orjson.loads(body),
            }
        )
        if self.fail_first > 0:
            self.fail_first -= 1
            return Response(status_code=500)
        return Response(status_code=204)


@pytest.fixture
async def receiver(loopback: Any) -> AsyncIterator[tuple[Receiver, str]]:
    hooks = Receiver()
    async with loopback(
        Starlette(routes=[Route("/hooks/recalls", hooks.hook, methods=["POST"])])
    ) as base:
        yield hooks, f"{base}/hooks/recalls"


@pytest.fixture
def intake_settings() -> dict[str, Any]:
    """The dispatcher sending every 0.1 s, retries after 0.2-0.4 s, a notice sent 1 s after its
    first listing, and notices due for acknowledgement at once (so "not acknowledged in time" needs
    no waiting)."""
    return {
        "seller_dispatch_interval_s": 0.1,
        "webhook_backoff_initial_s": 0.4,
        "webhook_backoff_max_s": 1.0,
        "seller_ack_window_s": 0,
        "seller_notice_settle_s": 1.0,  # the two listings of one recall go out together
        "webhook_allow_private_networks": True,  # the receiver is on loopback
    }


async def send(intake: Intake, event: ev.Event) -> None:
    """Publish an event as its producer (purchase-matcher) does."""
    env = envelope.wrap(event, source="/tests/purchase-matcher")
    await intake.producer.send_and_wait(
        intake.topic(event.topic),
        value=env.data,
        key=event.partition_key().encode(),
        headers=env.headers(),
    )


def declared(
    recall_id: str, product_id: str, seller_id: str, version: int = 1, tier: str = "confirmed"
) -> ev.StopSaleDeclared:
    return ev.StopSaleDeclared(
        recall_id=recall_id,
        recall_version=version,
        product_id=product_id,
        seller_id=seller_id,
        tier=tier,
        title="Acme kettle KX-1 recall",
        severity="high",
        declared_at=datetime.now(UTC),
    )


async def mails_to(address: str) -> list[email.message.EmailMessage]:
    async with httpx.AsyncClient(base_url=SINK_VIEWER, timeout=10) as client:
        r = await client.get("/messages", params={"rcpt": address})
        r.raise_for_status()
        found = []
        for m in r.json():
            if address in m["rcpt_to"]:
                raw = await client.get(f"/messages/{m['id']}")
                raw.raise_for_status()
                found.append(email.message_from_bytes(raw.content, policy=email.policy.default))
        return found


async def mail_to(address: str) -> email.message.EmailMessage | None:
    found = await mails_to(address)
    return found[0] if found else None


async def test_a_seller_is_notified_by_email_and_signed_webhook_and_acknowledges(
    intake: Intake, receiver: tuple[Receiver, str]
) -> None:
    hooks, url = receiver
    seller_id, seller_key = await intake.seller_key()
    other_seller, _ = await intake.seller_key()
    operator = {"X-Api-Key": await intake.operator_key()}
    seller = {"X-Api-Key": seller_key}
    address = f"{seller_id}@sellers.example"
    r = await intake.client.put(
        f"/v1/sellers/{seller_id}/notice-contact", json={"email": address}, headers=seller
    )
    assert r.status_code == 200, r.text
    registered = await intake.client.post(
        f"/v1/sellers/{seller_id}/webhook-endpoints",
        json={"url": url},
        headers={**seller, "Idempotency-Key": "hook-1"},
    )
    assert registered.status_code == 201, registered.text
    hooks.secret = registered.json()["secret"]
    again = await intake.client.post(
        f"/v1/sellers/{seller_id}/webhook-endpoints",
        json={"url": url},
        headers={**seller, "Idempotency-Key": "hook-1"},
    )
    assert again.json()["endpoint_id"] == registered.json()["endpoint_id"]  # a retry, not a second
    bad = await intake.client.post(
        f"/v1/sellers/{seller_id}/webhook-endpoints", json={"url": "ftp://x"}, headers=seller
    )
    assert bad.status_code == 422 and "url" in bad.text
    other = await intake.client.post(
        f"/v1/sellers/{other_seller}/webhook-endpoints", json={"url": url}, headers=seller
    )
    assert other.status_code == 404  # another seller's endpoints are not this seller's to set

    recall_id = str(uuid.uuid4())
    kettle, kettle_blue = new_id("kettle"), new_id("kettle-blue")
    await send(intake, declared(recall_id, kettle, seller_id))
    await send(intake, declared(recall_id, kettle_blue, seller_id))
    await send(intake, declared(recall_id, kettle, seller_id))  # redelivered: changes nothing

    # The webhook: a 500 first, delivered on the retry; both tries signed and logged.
    await eventually(lambda: asyncio.sleep(0, len(hooks.received) >= 2 or None), timeout=20)
    assert [h["verified"] for h in hooks.received] == [True, True]
    assert hooks.received[0]["body"] == hooks.received[1]["body"]
    body = hooks.received[0]["body"]
    assert body["type"] == "seller_notice.created"
    assert body["data"]["recall_id"] == recall_id and body["data"]["seller_id"] == seller_id

    async def delivered() -> dict[str, Any] | None:
        r = await intake.client.get(f"/v1/sellers/{seller_id}/webhook-deliveries", headers=seller)
        items = r.json()["items"]
        return items[0] if items and items[0]["status"] == "delivered" else None

    delivery = await eventually(delivered, timeout=20)
    assert [a["status_code"] for a in delivery["attempts"]] == [500, 204]

    async def one_notice() -> dict[str, Any] | None:
        r = await intake.client.get("/v1/seller-notices", headers=seller)
        items = r.json()["items"]
        return items[0] if items and len(items[0]["product_ids"]) == 2 else None

    notice = await eventually(one_notice, timeout=20)
    assert sorted(notice["product_ids"]) == sorted([kettle, kettle_blue])
    assert notice["status"] == "notified"

    mail = await eventually(lambda: mail_to(address), timeout=20)
    assert recall_id in str(mail["Subject"])
    assert f"/v1/seller-notices/{notice['notice_id']}/acknowledgement" in mail.get_content()

    # Not acknowledged in time (the window is 0 here): on the operators' list, until acknowledged.
    async def overdue_ids() -> set[str]:
        r = await intake.client.get("/v1/operator/unacknowledged-notices", headers=operator)
        assert r.status_code == 200, r.text
        return {n["notice_id"] for n in r.json()["items"]}

    assert notice["notice_id"] in await overdue_ids()
    refused = await intake.client.get("/v1/operator/unacknowledged-notices", headers=seller)
    assert refused.status_code == 403
    early = await intake.client.post(
        f"/v1/seller-notices/{notice['notice_id']}/closeout", json={}, headers=operator
    )
    assert early.status_code == 409  # no closeout before the removal is confirmed
    acked = await intake.client.post(
        f"/v1/seller-notices/{notice['notice_id']}/acknowledgement", json={}, headers=seller
    )
    assert acked.status_code == 200 and acked.json()["status"] == "acknowledged"
    repeat = await intake.client.post(
        f"/v1/seller-notices/{notice['notice_id']}/acknowledgement", json={}, headers=seller
    )
    assert repeat.json() == acked.json()
    assert notice["notice_id"] not in await overdue_ids()

    removed = await intake.client.post(
        f"/v1/seller-notices/{notice['notice_id']}/removal-confirmation",
        json={"units_removed": 40},
        headers=seller,
    )
    assert removed.json()["status"] == "removal_confirmed"
    assert removed.json()["units_removed"] == 40
    closed = await intake.client.post(
        f"/v1/seller-notices/{notice['notice_id']}/closeout",
        json={"note": "stock destroyed"},
        headers=operator,
    )
    assert closed.json()["status"] == "closed" and closed.json()["closed_at"]


async def test_a_sale_after_the_recall_is_an_incident_for_operators_and_the_seller(
    intake: Intake, receiver: tuple[Receiver, str]
) -> None:
    hooks, url = receiver
    hooks.fail_first = 0
    seller_id, seller_key = await intake.seller_key()
    seller = {"X-Api-Key": seller_key}
    operator = {"X-Api-Key": await intake.operator_key()}
    r = await intake.client.post(
        f"/v1/sellers/{seller_id}/webhook-endpoints", json={"url": url}, headers=seller
    )
    hooks.secret = r.json()["secret"]
    recall_id = str(uuid.uuid4())
    now = datetime.now(UTC)
    sale = ev.SaleAfterRecallDetected(
        recall_id=recall_id,
        recall_version=1,
        customer_id=new_id("cust"),
        order_id=new_id("order"),
        line_id=new_id("line"),
        product_id=new_id("kettle"),
        seller_id=seller_id,
        placed_at=now,
        recall_published_at=now - timedelta(days=2),
    )
    await send(intake, sale)
    await send(intake, sale)  # redelivered: one incident

    async def queued() -> list[dict[str, Any]] | None:
        r = await intake.client.get("/v1/incidents", params={"status": "open"}, headers=operator)
        mine = [i for i in r.json()["items"] if i["recall_id"] == recall_id]
        return mine or None

    incidents = await eventually(queued, timeout=20)
    assert len(incidents) == 1 and incidents[0]["line_id"] == sale.line_id
    own = await intake.client.get("/v1/incidents", headers=seller)
    assert [i["incident_id"] for i in own.json()["items"]] == [incidents[0]["incident_id"]]
    report = (await intake.client.get(f"/v1/sellers/{seller_id}/report", headers=seller)).json()
    assert report["incidents"] == {"open": 1, "resolved": 0}
    assert report["open_incidents"][0]["order_id"] == sale.order_id

    await eventually(lambda: asyncio.sleep(0, hooks.received or None), timeout=20)
    assert hooks.received[0]["verified"]
    assert hooks.received[0]["body"]["type"] == "sale_incident.detected"

    resolved = await intake.client.post(
        f"/v1/operator/incidents/{incidents[0]['incident_id']}/resolution",
        json={"resolution": "seller re-trained; order refunded"},
        headers=operator,
    )
    assert resolved.json()["status"] == "resolved"
    missing = await intake.client.post(
        f"/v1/operator/incidents/{incidents[0]['incident_id']}/resolution",
        json={},
        headers=operator,
    )
    assert missing.status_code == 422 and "resolution" in missing.text
    report = (await intake.client.get(f"/v1/sellers/{seller_id}/report", headers=seller)).json()
    assert report["incidents"] == {"open": 0, "resolved": 1}


async def test_an_amendment_adding_a_listing_tells_its_sellers_and_no_one_else(
    intake: Intake, receiver: tuple[Receiver, str]
) -> None:
    hooks, url = receiver
    hooks.fail_first = 0
    seller_id, seller_key = await intake.seller_key()
    newcomer, newcomer_key = await intake.seller_key()
    seller = {"X-Api-Key": seller_key}
    address, newcomer_address = f"{seller_id}@sellers.example", f"{newcomer}@sellers.example"
    for who, key, mail in (
        (seller_id, seller_key, address),
        (newcomer, newcomer_key, newcomer_address),
    ):
        r = await intake.client.put(
            f"/v1/sellers/{who}/notice-contact", json={"email": mail}, headers={"X-Api-Key": key}
        )
        assert r.status_code == 200, r.text
    r = await intake.client.post(
        f"/v1/sellers/{seller_id}/webhook-endpoints", json={"url": url}, headers=seller
    )
    hooks.secret = r.json()["secret"]
    recall_id = str(uuid.uuid4())
    kettle, kettle_xl = new_id("kettle"), new_id("kettle-xl")

    async def notice(headers: dict[str, str], check: Any) -> dict[str, Any] | None:
        r = await intake.client.get("/v1/seller-notices", headers=headers)
        mine = [n for n in r.json()["items"] if n["recall_id"] == recall_id]
        return mine[0] if mine and check(mine[0]) else None

    def told(n: dict[str, Any]) -> dict[str, Any] | None:
        return n if n["email_status"] == "sent" else None

    # Version 1: the seller's kettle. Told (email and webhook), then acknowledged.
    await send(intake, declared(recall_id, kettle, seller_id))
    first = await eventually(lambda: notice(seller, told), timeout=20)
    await eventually(lambda: asyncio.sleep(0, hooks.received or None), timeout=20)
    acked = await intake.client.post(
        f"/v1/seller-notices/{first['notice_id']}/acknowledgement", json={}, headers=seller
    )
    assert acked.json()["status"] == "acknowledged"

    # Version 2 re-declares the kettle (another tier: still off sale, nothing more to do) ...
    await send(intake, declared(recall_id, kettle, seller_id, version=2, tier="possibly_affected"))
    await eventually(lambda: notice(seller, lambda n: n["recall_version"] == 2), timeout=20)
    # ... and adds the XL kettle, which the seller and a seller not reached before both list.
    await send(intake, declared(recall_id, kettle_xl, seller_id, version=2))
    updated = await eventually(
        lambda: notice(seller, lambda n: n["updates"] == 1 and told(n)), timeout=20
    )
    assert updated["added_product_ids"] == [kettle_xl]
    assert sorted(updated["product_ids"]) == sorted([kettle, kettle_xl])
    assert updated["status"] == "notified"  # due to acknowledge again: there is more to do
    await send(intake, declared(recall_id, kettle_xl, seller_id, version=2))  # redelivered
    await send(intake, declared(recall_id, kettle_xl, newcomer, version=2))  # same partition: after
    newcomer_notice = await eventually(
        lambda: notice({"X-Api-Key": newcomer_key}, told), timeout=20
    )
    assert newcomer_notice["product_ids"] == [kettle_xl] and newcomer_notice["updates"] == 0

    await eventually(lambda: asyncio.sleep(0, len(hooks.received) >= 2 or None), timeout=20)
    assert [h["body"]["type"] for h in hooks.received] == [
        "seller_notice.created",
        "seller_notice.updated",
    ]
    assert all(h["verified"] for h in hooks.received)
    assert hooks.received[1]["body"]["data"]["added_product_ids"] == [kettle_xl]
    mails = await mails_to(address)
    assert len(mails) == 2, [str(m["Subject"]) for m in mails]
    update_mail = next(m for m in mails if str(m["Subject"]).startswith("More listings"))
    assert kettle_xl in update_mail.get_content() and recall_id in str(update_mail["Subject"])
    assert len(await mails_to(newcomer_address)) == 1

    # A lift makes the kettle sellable (an accepted letter); stopped again (the letter withdrawn),
    # it is news to the seller again.
    lifted = ev.StopSaleLifted(
        recall_id=recall_id,
        recall_version=2,
        product_id=kettle,
        seller_id=seller_id,
        reason="out_of_scope",
        lifted_at=datetime.now(UTC),
    )
    await send(intake, lifted)
    await send(intake, declared(recall_id, kettle, seller_id, version=3))
    again = await eventually(
        lambda: notice(seller, lambda n: n["updates"] == 2 and told(n)), timeout=20
    )
    assert again["added_product_ids"] == [kettle]
    await eventually(lambda: asyncio.sleep(0, len(hooks.received) >= 3 or None), timeout=20)
    assert hooks.received[2]["body"]["data"]["updates"] == 2


async def test_a_notice_that_found_no_address_is_emailed_once_the_seller_gives_one(
    intake: Intake,
) -> None:
    seller_id, seller_key = await intake.seller_key()
    seller = {"X-Api-Key": seller_key}
    recall_id = str(uuid.uuid4())
    await send(intake, declared(recall_id, new_id("kettle"), seller_id))

    async def email_status(wanted: str) -> bool | None:
        r = await intake.client.get("/v1/seller-notices", headers=seller)
        items = r.json()["items"]
        return True if items and items[0]["email_status"] == wanted else None

    await eventually(lambda: email_status("no_contact"), timeout=20)
    address = f"{seller_id}@sellers.example"
    r = await intake.client.put(
        f"/v1/sellers/{seller_id}/notice-contact", json={"email": address}, headers=seller
    )
    assert r.status_code == 200, r.text
    await eventually(lambda: email_status("sent"), timeout=20)
    mail = await eventually(lambda: mail_to(address), timeout=20)
    assert recall_id in str(mail["Subject"])
