"""One recall end to end, through real Kafka, PostgreSQL, SMTP and the five services as processes:
seller POST -> recalls.v1 -> matcher -> alerts.v1 -> notifier -> email; customer-api shows the alert
to its customer only; the customer asks for a refund -> refund-logistics pays it -> the status
shows."""

from __future__ import annotations

import asyncio
import hashlib
import io
import shutil
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from devstack import SERVICES, Stack  # tests/conftest.py puts deploy/ on the path
from PIL import Image

from recall_shared import events as ev
from recall_shared.auth import issue_customer_token
from recall_shared.envelope import wrap
from recall_shared.kafka import create_client_producer
from recall_shared.testing import eventually, read_topic
from recall_shared.trace_sink import TraceSink

pytestmark = [pytest.mark.e2e, pytest.mark.integration]
# The stack exports its spans over OTLP to the trace_sink fixture (tests/conftest.py).
COLLECT_TRACES = True

JWT_SECRET = "e2e-" + "s" * 40
SMTP_VIEWER = "http://127.0.0.1:8025"


def destroyed_kettle_photo(run: str) -> bytes:
    """The customer's photo of the destroyed product: a PNG that decodes, large enough for
    refund-logistics' checks, unlike other runs' photos (it flags a photo reused across cases)."""
    noise = hashlib.shake_256(run.encode()).digest(16 * 12)
    image = Image.frombytes("L", (16, 12), noise).resize((320, 240), Image.Resampling.NEAREST)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


async def publish(stack: Stack, events: list[ev.Event]) -> None:
    prefix = stack.env["RECALL_ALERTS_TOPIC_PREFIX"]
    producer = create_client_producer(stack.env["KAFKA_BOOTSTRAP_SERVERS"], "e2e-upstream")
    await producer.start()
    try:
        for event in events:
            env = wrap(event, source="/tests/upstream")
            await producer.send_and_wait(
                prefix + event.topic,
                env.data,
                key=event.partition_key().encode(),
                headers=env.headers(),
            )
    finally:
        await producer.stop()


def bearer(customer_id: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_customer_token(customer_id, JWT_SECRET)}"}


async def mails_to(address: str) -> list[dict]:
    async with httpx.AsyncClient() as c:
        r = await c.get(f"{SMTP_VIEWER}/messages", params={"rcpt": address})
        r.raise_for_status()
        return [m for m in r.json() if address in m["rcpt_to"]]


async def test_one_recall_from_seller_to_refund(stack: Stack, trace_sink: TraceSink) -> None:
    run = uuid.uuid4().hex[:8]
    alice, bob, seller, product, other = (
        f"alice-{run}",
        f"bob-{run}",
        f"seller-{run}",
        f"kettle-{run}",
        f"lamp-{run}",
    )
    alice_mail, bob_mail = f"{alice}@example.test", f"{bob}@example.test"
    stack.run_cli(SERVICES[0], "register-seller", seller)
    seller_key = stack.run_cli(
        SERVICES[0], "issue-api-key", "--seller-id", seller, "--label", "e2e", capture=True
    ).splitlines()[-1]

    placed = datetime.now(UTC) - timedelta(days=3)
    line = lambda lid, pid, qty, price: ev.OrderLine(  # noqa: E731
        line_id=lid,
        product_id=pid,
        title=pid,
        seller_id=seller,
        quantity=qty,
        unit_price=Decimal(price),
        currency="EUR",
    )
    await publish(
        stack,
        [
            ev.ListingUpdated(product_id=product, title="Kettle", seller_ids=[seller]),
            ev.ListingUpdated(product_id=other, title="Lamp", seller_ids=[seller]),
            ev.CustomerUpdated(customer_id=alice, name="Alice", email=alice_mail, locale="en"),
            ev.CustomerUpdated(customer_id=bob, name="Bob", email=bob_mail, locale="en"),
            ev.OrderPlaced(
                order_id=f"o1-{run}",
                customer_id=alice,
                placed_at=placed,
                lines=[line(f"l1-{run}", product, 2, "19.95")],
            ),
            ev.OrderPlaced(
                order_id=f"o2-{run}",
                customer_id=bob,
                placed_at=placed,
                lines=[line(f"l2-{run}", other, 1, "5.00")],
            ),
        ],
    )

    recall_body = {
        "content": {
            "title": f"Kettle {run}",
            "hazard": "The lid opens while boiling: burns.",
            "severity": "high",
            "stop_using": "Stop using the kettle.",
            "remedies": [{"type": "refund_on_destruction"}],
        },
        "rules": [{"product_ids": [product]}],
        "logistics_enrolled": True,
    }
    async with httpx.AsyncClient(
        base_url=stack.url("recall-intake"), headers={"X-Api-Key": seller_key}, timeout=10
    ) as intake:

        async def create() -> httpx.Response | None:
            r = await intake.post(
                "/v1/recalls", json=recall_body, headers={"Idempotency-Key": f"e2e-{run}"}
            )
            return r if r.status_code == 201 else None  # 422 until intake has read the listing

        created = (await eventually(create, timeout=30)).json()
        assert created["status"] == "draft" and created["seller_id"] == seller
        published = await intake.post(f"/v1/recalls/{created['recall_id']}/publish")
        assert published.status_code == 200, published.text
        assert published.json()["status"] == "published"

    # The matcher emits exactly one alert, for the customer who bought the product.
    alerts_topic = stack.env["RECALL_ALERTS_TOPIC_PREFIX"] + "alerts.v1"
    records = await read_topic(alerts_topic, count=1, timeout=30)
    raised = [r for r in records if r[1] is not None and r[1].type == "alert.raised.v1"]
    assert [r[0] for r in raised] == [alice.encode()]

    # One email to Alice, none to Bob.
    mails = await eventually(lambda: mails_to(alice_mail), timeout=30)
    assert len(mails) == 1
    assert mails[0]["subject"] == f"Product safety recall: Kettle {run}"
    assert await mails_to(bob_mail) == []

    # customer-api shows the alert to Alice only.
    async with httpx.AsyncClient(base_url=stack.url("customer-api"), timeout=10) as api:

        async def alice_alerts() -> list[dict]:
            r = await api.get("/v1/me/alerts", headers=bearer(alice))
            assert r.status_code == 200, r.text
            return r.json()["items"]

        items = await eventually(alice_alerts, timeout=30)
        assert len(items) == 1 and items[0]["title"] == f"Kettle {run}" and items[0]["units"] == 2
        alert_id = items[0]["alert_id"]
        assert (await api.get(f"/v1/me/alerts/{alert_id}", headers=bearer(bob))).status_code == 404
        assert (await api.get("/v1/me/alerts", headers=bearer(bob))).json()["items"] == []
        assert (await api.get("/v1/me/alerts")).status_code == 401
        banner = (await api.get("/v1/me/banner", headers=bearer(alice))).json()
        assert banner["open_alerts"] == 1 and banner["most_severe"]["alert_id"] == alert_id

        # The notice shows in the alert once notifications.v1 is read.
        async def noticed() -> bool:
            detail = (await api.get(f"/v1/me/alerts/{alert_id}", headers=bearer(alice))).json()
            return [n["kind"] for n in detail["notices"]] == ["initial"]

        await eventually(noticed, timeout=30)

        # Alice asks for a refund; refund-logistics opens a case and pays the price of both units.
        chosen = await api.post(
            f"/v1/me/alerts/{alert_id}/remedy",
            json={"remedy": "refund_on_destruction"},
            headers={**bearer(alice), "Idempotency-Key": f"remedy-{run}"},
        )
        assert chosen.status_code == 202, chosen.text

        async def case_opened() -> dict | None:
            r = (await api.get(f"/v1/me/alerts/{alert_id}/remedy", headers=bearer(alice))).json()
            return r if r["case_id"] else None

        case_id = (await eventually(case_opened, timeout=30))["case_id"]

        # Refund on proof of destruction: Alice uploads her photo of the destroyed kettle to RLS.
        photo = destroyed_kettle_photo(run)
        async with httpx.AsyncClient(base_url=stack.url("refund-logistics"), timeout=10) as rls:
            proof = await rls.post(
                f"/v1/cases/{case_id}/proof",
                content=photo,
                headers={**bearer(alice), "Content-Type": "image/png"},
            )
            assert proof.status_code in (200, 202), proof.text
            assert (
                await rls.post(
                    f"/v1/cases/{case_id}/proof",
                    content=photo,
                    headers={**bearer(bob), "Content-Type": "image/png"},
                )
            ).status_code == 404

        async def refunded() -> dict | None:
            r = (await api.get(f"/v1/me/alerts/{alert_id}/remedy", headers=bearer(alice))).json()
            return r if r["state"] == "refunded" else None

        remedy = await eventually(refunded, timeout=30)
        assert (
            Decimal(remedy["refunded_amount"]) == Decimal("39.90") and remedy["currency"] == "EUR"
        )
        banner = (await api.get("/v1/me/banner", headers=bearer(alice))).json()
        assert banner["open_alerts"] == 0

    async with httpx.AsyncClient(
        base_url=stack.url("refund-logistics"), headers={"X-Api-Key": seller_key}, timeout=10
    ) as rls:
        case = (await rls.get(f"/v1/cases/{remedy['case_id']}")).json()
        assert case["state"] == "refunded"
        assert [t["transition"] for t in case["transitions"]] == ["open", "issue_refund"]

    # One recall, one trace: the seller's publish request is the root of spans in every service it
    # reached (Kafka hops through the outbox and the matcher's fan-out, the notifier's SMTP send),
    # each span's parent in it.
    await eventually(lambda: recall_trace(trace_sink), timeout=30)


PUBLISH_ROUTE = "POST /v1/recalls/{recall_id}/publish"


async def recall_trace(sink: TraceSink) -> bool:
    spans = sink.received()
    roots = [s for s in spans if s.service == "recall-intake" and s.name == PUBLISH_ROUTE]
    assert len(roots) == 1, [s.name for s in spans if s.service == "recall-intake"]
    trace = [s for s in spans if s.trace_id == roots[0].trace_id]
    # Every other service processes the recall's events; recall-intake may too (its seller
    # notices read the stop-sales the recall caused).
    reached = {s.service for s in trace if s.name.startswith("process ")}
    if not reached >= {svc.name for svc in SERVICES} - {"recall-intake"}:
        return False
    # The notice's SMTP send, run later by the notifier's sender loop, is in the trace too.
    if not any(s.service == "notifier" and s.name == "smtp send" for s in trace):
        return False
    ids = {s.span_id for s in trace}
    orphans = [s.name for s in trace if s is not roots[0] and s.parent_span_id not in ids]
    assert not orphans, orphans
    assert roots[0].parent_span_id == ""
    return True


async def test_every_running_service_serves_metrics_promtool_accepts(stack: Stack) -> None:
    """A scrape of each running service (consumers and relay started, after the recall above):
    ``promtool check metrics`` finds no problem, and the lag and dead-letter gauges are there."""
    promtool = shutil.which("promtool")
    assert promtool, "promtool not found: run deploy/deps.sh (Debian package prometheus)"
    async with httpx.AsyncClient(timeout=10) as client:
        for svc in SERVICES:
            body = (await client.get(f"{stack.url(svc.name)}/metrics")).text
            assert "consumer_lag{" in body and "dead_letters_pending{" in body, svc.name
            checked = await asyncio.to_thread(
                subprocess.run,
                [promtool, "check", "metrics"],
                input=body,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert checked.returncode == 0, (svc.name, checked.stdout + checked.stderr)


def test_services_stop_cleanly_on_sigterm(stack: Stack) -> None:
    """Runs last in this module: on SIGTERM every service drains (consumers commit, relay stops,
    producer flushes) and logs it, within the stop timeout. uvicorn re-raises the signal after its
    graceful shutdown, so the exit status is -SIGTERM, never a kill."""
    processes = dict(stack.processes)
    stack.stop()
    assert {name: p.returncode for name, p in processes.items()} == {
        svc.name: -15 for svc in SERVICES
    }
    for svc in SERVICES:
        log = (stack.log_dir / f"{svc.name}.log").read_text()
        assert '"msg":"service stopped"' in log, f"{svc.name} did not shut down gracefully"
