"""A customer finishes a refund on destruction from the recalls page, in Debian's Chromium
(Playwright), through the five services as separate processes: choose the remedy, upload the photo
(forwarded by customer-api to refund-logistics), an operator accepts it from the review queue, and
the page says refunded, with the case's timeline, and the refund confirmation arrives by email (the
SMTP sink). The case is worth more than refund-logistics' default pay-without-review limit (100.00),
so the photo waits for the operator. A refund with return: the label is downloadable from the page
and from its email, the item is received, refunded, confirmed by email. And a recall amended at
recall-intake: a wording edit tells the customer nothing, a raised severity re-notifies them."""

from __future__ import annotations

import contextlib
import email
import email.policy
import hashlib
import io
import tempfile
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from devstack import SERVICES, Stack  # tests/conftest.py puts deploy/ on the path
from PIL import Image
from playwright.async_api import BrowserContext, async_playwright, expect

from recall_shared import events as ev
from recall_shared.auth import issue_customer_token
from recall_shared.envelope import wrap
from recall_shared.kafka import create_client_producer
from recall_shared.testing import eventually

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
JWT_SECRET = "e2e-" + "s" * 40  # tests/conftest.py's stack
SMTP_VIEWER = "http://127.0.0.1:8025"  # the shared SMTP sink's viewer (deploy/infra.sh)
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.integration,
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's Chromium at /usr/bin/chromium"
    ),
]


async def publish(stack: Stack, events: list[ev.Event]) -> None:
    producer = create_client_producer(stack.env["KAFKA_BOOTSTRAP_SERVERS"], "e2e-upstream")
    await producer.start()
    try:
        for event in events:
            env = wrap(event, source="/tests/upstream")
            await producer.send_and_wait(
                stack.env["RECALL_ALERTS_TOPIC_PREFIX"] + event.topic,
                env.data,
                key=event.partition_key().encode(),
                headers=env.headers(),
            )
    finally:
        await producer.stop()


def photo_file(run: str, directory: str) -> Path:
    noise = hashlib.shake_256(run.encode()).digest(16 * 12)
    path = Path(directory) / "destroyed-kettle.jpg"
    image = Image.frombytes("L", (16, 12), noise).resize((480, 360), Image.Resampling.NEAREST)
    out = io.BytesIO()
    image.convert("RGB").save(out, "JPEG")
    path.write_bytes(out.getvalue())
    return path


@dataclass
class Recalled:
    """A customer with an alert of a published, enrolled recall."""

    alert_id: str
    recall_id: str
    token: str
    operator_key: str
    email: str
    title: str  # the recall's, in the subjects of its emails
    seller_key: str
    recall_body: dict


async def recalled_customer(stack: Stack, remedies: list[str], price: str) -> Recalled:
    run = uuid.uuid4().hex[:8]
    customer, seller, product = f"erika-{run}", f"seller-{run}", f"kettle-{run}"
    stack.run_cli(SERVICES[0], "register-seller", seller)
    seller_key = stack.run_cli(
        SERVICES[0], "issue-api-key", "--seller-id", seller, "--label", "e2e", capture=True
    ).splitlines()[-1]
    operator_key = stack.run_cli(
        SERVICES[0], "issue-api-key", "--label", "e2e-operator", capture=True
    ).splitlines()[-1]
    await publish(
        stack,
        [
            ev.ListingUpdated(product_id=product, title="Kettle", seller_ids=[seller]),
            ev.CustomerUpdated(
                customer_id=customer, name="Erika", email=f"{customer}@example.test", locale="en"
            ),
            ev.OrderPlaced(
                order_id=f"o-{run}",
                customer_id=customer,
                placed_at=datetime.now(UTC) - timedelta(days=3),
                lines=[
                    ev.OrderLine(
                        line_id=f"l-{run}",
                        product_id=product,
                        title="Kettle",
                        seller_id=seller,
                        quantity=2,
                        unit_price=Decimal(price),
                        currency="EUR",
                    )
                ],
            ),
        ],
    )
    recall_body = {
        "content": {
            "title": f"Kettle {run}",
            "hazard": "The lid opens while boiling: burns.",
            "severity": "high",
            "stop_using": "Stop using the kettle.",
            "remedies": [{"type": r} for r in remedies],
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
            return r if r.status_code == 201 else None

        created = await eventually(create, timeout=30)
        assert created is not None
        recall_id = created.json()["recall_id"]
        assert (await intake.post(f"/v1/recalls/{recall_id}/publish")).status_code == 200

    token = issue_customer_token(customer, JWT_SECRET)

    async def alert_id() -> str | None:
        async with httpx.AsyncClient(base_url=stack.url("customer-api"), timeout=10) as api:
            items = (
                await api.get("/v1/me/alerts", headers={"Authorization": f"Bearer {token}"})
            ).json()["items"]
        return items[0]["alert_id"] if items else None

    return Recalled(
        await eventually(alert_id, timeout=30),
        recall_id,
        token,
        operator_key,
        f"{customer}@example.test",
        f"Kettle {run}",
        seller_key,
        recall_body,
    )


async def mail_with_subject(address: str, subject: str) -> email.message.EmailMessage:
    """The one message to ``address`` with this subject, from the SMTP sink (waits for it)."""

    async def found() -> email.message.EmailMessage | None:
        # The shared sink lists every run's mail (thousands): a listing can take seconds.
        async with httpx.AsyncClient(base_url=SMTP_VIEWER, timeout=60) as sink:
            listed = (await sink.get("/messages", params={"rcpt": address})).json()
            mine = [m for m in listed if address in m["rcpt_to"] and m["subject"] == subject]
            assert len(mine) <= 1, f"{len(mine)} mails {subject!r} to {address}"
            if not mine:
                return None
            raw = (await sink.get(f"/messages/{mine[0]['id']}")).content
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(msg, email.message.EmailMessage)
        return msg

    return await eventually(found, timeout=120, interval=1.0)


def body_of(msg: email.message.EmailMessage, subtype: str) -> str:
    part = msg.get_body(preferencelist=(subtype,))
    assert part is not None, f"no text/{subtype} part"
    return str(part.get_content())


@contextlib.asynccontextmanager
async def chromium(profile: str) -> AsyncIterator[BrowserContext]:
    async with async_playwright() as pw:
        context = await pw.chromium.launch_persistent_context(
            str(Path(profile) / "profile"),
            executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS,
            headless=True,
            locale="en-GB",
        )
        try:
            yield context
        finally:
            with contextlib.suppress(Exception):
                await context.close()


async def test_refund_on_destruction_from_the_page_to_refunded(stack: Stack) -> None:
    who = await recalled_customer(stack, ["refund_on_destruction", "replacement"], "59.95")
    alert, recall_id, token, operator_key = who.alert_id, who.recall_id, who.token, who.operator_key
    api_url = stack.url("customer-api")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="e2e-chromium-") as profile:
        photo = photo_file(alert, profile)
        async with chromium(profile) as context:
            page = await context.new_page()
            await page.goto(f"{api_url}/signin?token={token}&next=/recalls/{alert}")
            await page.get_by_label("A full refund of the price you paid, on proof of").check()
            await page.get_by_role("button", name="Confirm my choice").click()
            await expect(page.get_by_text("Your choice was recorded.")).to_be_visible()

            # The upload form appears once refund-logistics' case waits for the photo.
            async def upload_form_shown() -> bool:
                await page.goto(f"{api_url}/recalls/{alert}")
                return await page.get_by_label("Photo of the destroyed product").count() == 1

            await eventually(upload_form_shown, timeout=30, interval=0.5)
            await expect(page.get_by_text("What we need from you:")).to_be_visible()
            await page.get_by_label("Photo of the destroyed product").set_input_files(photo)
            await page.screenshot(path=str(SCREENSHOTS / "e2e-proof-chosen.png"))
            await page.get_by_role("button", name="Send the photo").click()
            await expect(page.get_by_text("Thank you. We received your photo.")).to_be_visible()

            async with httpx.AsyncClient(
                base_url=stack.url("refund-logistics"),
                headers={"X-Api-Key": operator_key},
                timeout=10,
            ) as rls:

                async def queued() -> dict | None:
                    r = await rls.get("/v1/reviews?limit=200")
                    if r.status_code != 200:
                        return None
                    mine = [i for i in r.json()["items"] if i["recall_id"] == recall_id]
                    return mine[0] if mine else None

                review = await eventually(queued, timeout=30, interval=0.5)
                await page.goto(f"{api_url}/recalls/{alert}")
                await expect(page.get_by_text("We are checking your photo.")).to_be_visible()
                accepted = await rls.post(f"/v1/cases/{review['case_id']}/proof/accept")
                assert accepted.status_code in (200, 202), accepted.text

            async def refunded() -> bool:
                await page.goto(f"{api_url}/recalls/{alert}")
                return await page.get_by_text("Status: Refunded").count() == 1

            await eventually(refunded, timeout=30, interval=0.5)
            await expect(
                page.get_by_text("€119.90 has been refunded to your original payment method.")
            ).to_be_visible()
            timeline = page.locator("ol.timeline li")
            await expect(timeline).to_have_count(4)
            for text in (
                "Remedy requested",
                "Photo received, being checked",
                "Photo accepted",
                "Refunded",
            ):
                await expect(timeline.filter(has_text=text)).to_have_count(1)
            assert await page.get_by_label("Photo of the destroyed product").count() == 0
            await page.screenshot(path=str(SCREENSHOTS / "e2e-proof-refunded.png"), full_page=True)

            # ... and the refund confirmation by email, whose link leads back to the page.
            confirmation = await mail_with_subject(
                who.email, f"Your refund has been paid: {who.title}"
            )
            assert "€119.90 has been refunded to your original payment method" in body_of(
                confirmation, "plain"
            )
            await page.set_content(body_of(confirmation, "html"))
            own_page = page.get_by_role("link", name="See your remedy on your recalls page")
            assert await own_page.get_attribute("href") == f"{api_url}/recalls/{alert}"


async def test_refund_with_return_shows_the_label_then_refunds_when_the_item_arrives(
    stack: Stack,
) -> None:
    who = await recalled_customer(stack, ["refund_with_return"], "24.50")
    api_url = stack.url("customer-api")
    with tempfile.TemporaryDirectory(prefix="e2e-chromium-") as profile:
        async with chromium(profile) as context:
            page = await context.new_page()
            await page.goto(f"{api_url}/signin?token={who.token}&next=/recalls/{who.alert_id}")
            await page.get_by_label("A full refund of the price you paid, with a prepaid").check()
            await page.get_by_role("button", name="Confirm my choice").click()

            async def label_shown() -> bool:
                await page.goto(f"{api_url}/recalls/{who.alert_id}")
                return (
                    await page.get_by_role("link", name="Download your return label").count() == 1
                )

            await eventually(label_shown, timeout=30, interval=0.5)
            link = page.get_by_role("link", name="Download your return label")
            href = await link.get_attribute("href")
            assert href is not None and href.startswith("https://") and href.endswith(".pdf")
            assert await link.get_attribute("download") is not None
            await expect(page.get_by_text("Print the return label")).to_be_visible()
            await expect(page.get_by_text("(parcel tracking number ")).to_be_visible()

            # The same label from its email: the link as the customer's mail client shows it.
            label_mail = await mail_with_subject(
                who.email, f"Your prepaid return label: {who.title}"
            )
            assert f"Download your return label: {href}" in body_of(label_mail, "plain")
            assert not any(p.get_filename() for p in label_mail.walk()), "a link, no attachment"
            await page.set_content(body_of(label_mail, "html"))
            mailed = page.get_by_role("link", name="Download your return label")
            assert await mailed.get_attribute("href") == href

            async with httpx.AsyncClient(
                base_url=stack.url("refund-logistics"),
                headers={"X-Api-Key": who.operator_key},
                timeout=10,
            ) as rls:
                cases = (await rls.get(f"/v1/cases?recall_id={who.recall_id}")).json()["items"]
                (case,) = cases
                received = await rls.post(f"/v1/cases/{case['case_id']}/events/item-received")
                assert received.status_code in (200, 202), received.text

            async def refunded() -> bool:
                await page.goto(f"{api_url}/recalls/{who.alert_id}")
                return await page.get_by_text("Status: Refunded").count() == 1

            await eventually(refunded, timeout=30, interval=0.5)
            await expect(
                page.get_by_text("€49.00 has been refunded to your original payment method.")
            ).to_be_visible()
            timeline = page.locator("ol.timeline li")
            for text in ("Return label issued", "Returned product received", "Refunded"):
                await expect(timeline.filter(has_text=text)).to_have_count(1)
            assert await page.get_by_role("link", name="Download your return label").count() == 0
            await page.screenshot(path=str(SCREENSHOTS / "e2e-return-refunded.png"), full_page=True)
            confirmation = await mail_with_subject(
                who.email, f"Your refund has been paid: {who.title}"
            )
            assert "€49.00 has been refunded to your original payment method" in body_of(
                confirmation, "plain"
            )


async def test_a_material_amendment_re_notifies_the_customer_and_a_wording_edit_does_not(
    stack: Stack,
) -> None:
    """recall-intake's amendment -> recalls.v1 -> purchase-matcher (alert.updated.v1, the same
    alert version) -> notifier: only the material one is mailed."""
    who = await recalled_customer(stack, ["refund_on_destruction"], "10.00")
    await mail_with_subject(who.email, f"Product safety recall: {who.title}")
    content = who.recall_body["content"]
    async with httpx.AsyncClient(
        base_url=stack.url("recall-intake"), headers={"X-Api-Key": who.seller_key}, timeout=10
    ) as intake:
        for amended in (
            {**content, "hazard": "The lid may open while the water boils, which can burn."},
            {**content, "severity": "critical", "stop_using": "Unplug it and stop using it now."},
        ):
            r = await intake.post(
                f"/v1/recalls/{who.recall_id}/amendments",
                json={"content": amended, "rules": who.recall_body["rules"]},
            )
            assert r.status_code == 200, r.text
    amendment = await mail_with_subject(
        who.email, f"Product safety recall: {who.title} (important change)"
    )
    text = body_of(amendment, "plain")
    assert "has changed in a way that matters for your safety" in text
    assert "Unplug it and stop using it now." in text
    async with httpx.AsyncClient(base_url=SMTP_VIEWER, timeout=60) as sink:
        listed = (await sink.get("/messages", params={"rcpt": who.email})).json()
    # The wording edit came first on the same partitions: had it been told, it would be here.
    assert len([m for m in listed if who.email in m["rcpt_to"]]) == 2
