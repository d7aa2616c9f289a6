"""The customer's pages in a real browser: Debian's headless Chromium driven by Playwright.

customer-api runs as it does in production (a real uvicorn server on a free 127.0.0.1 port, its
runtime consuming real Kafka and writing real PostgreSQL); alerts arrive as ``alert.raised.v1``
events and remedy progress as ``remedy.case_transitioned.v1``. Playwright never downloads a browser:
it launches /usr/bin/chromium (``apt-get install chromium``; .ci/run installs it). Screenshots of
every step go to test-artifacts/screenshots/.
"""

from __future__ import annotations

import contextlib
import re
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import BrowserContext, Page, async_playwright, expect

from recall_shared import events as ev
from recall_shared.testing import eventually

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[4] / "test-artifacts" / "screenshots"
# An inline image, so the page's <img> renders without any network access.
KETTLE_SVG = (
    "data:image/svg+xml;utf8,<svg xmlns='http://www.w3.org/2000/svg' width='160' height='120'>"
    "<rect width='160' height='120' fill='%23eeeeee'/><rect x='45' y='35' width='70' height='60' "
    "rx='8' fill='%23555555'/><rect x='40' y='92' width='80' height='12' fill='%23222222'/></svg>"
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs Debian's Chromium at /usr/bin/chromium "
        "(apt-get install -y chromium; .ci/run installs it)",
    ),
]


@dataclass
class Browser:
    context: BrowserContext
    base_url: str
    console_errors: list[str]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser(served_api) -> AsyncIterator[Browser]:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    with tempfile.TemporaryDirectory(prefix="customer-api-chromium-") as profile:
        async with async_playwright() as pw:
            context = await pw.chromium.launch_persistent_context(
                profile,
                executable_path=str(CHROMIUM),
                args=CHROMIUM_ARGS,
                headless=True,
                viewport={"width": 1100, "height": 900},
                locale="en-GB",
            )
            # Content-Security-Policy violations and script errors show up as console errors.
            context.on(
                "console", lambda msg: errors.append(msg.text) if msg.type == "error" else None
            )
            context.on("weberror", lambda err: errors.append(str(err.error)))
            try:
                yield Browser(context, served_api.base_url, errors)
            finally:
                with contextlib.suppress(Exception):
                    await context.close()


@pytest_asyncio.fixture(loop_scope="module")
async def page(browser: Browser) -> AsyncIterator[Page]:
    await browser.context.clear_cookies()
    browser.console_errors.clear()
    p = await browser.context.new_page()
    try:
        yield p
    finally:
        await p.close()
    assert browser.console_errors == [], f"the page logged errors: {browser.console_errors}"


async def sign_in(page: Page, api, customer_id: str, next_path: str = "/orders") -> None:
    await page.context.clear_cookies()
    response = await page.goto(
        f"{api.base_url}/signin?token={api.token(customer_id)}&next={next_path}"
    )
    assert response is not None and response.ok, response and response.status
    assert page.url.startswith(f"{api.base_url}{next_path.split('?')[0]}")


async def shot(page: Page, name: str) -> None:
    await page.screenshot(path=str(SCREENSHOTS / f"customer-api-{name}.png"), full_page=True)


def with_content(alert: ev.AlertState, **update: object) -> ev.AlertState:
    return alert.model_copy(update={"recall": alert.recall.model_copy(update=update)})


async def expected_422_logged(console_errors: list[str]) -> None:
    """Chromium logs a 4xx document as a console error: wait for that one, and only it, to go."""
    logged = (
        "Failed to load resource: the server responded with a status of 422 (Unprocessable Entity)"
    )

    async def seen():
        return logged in console_errors or None

    await eventually(seen, timeout=5, interval=0.05)
    console_errors.remove(logged)


# --------------------------------------------------------------------------- tests


async def test_banner_on_orders_for_an_affected_customer_only(
    served_api, events, page: Page
) -> None:
    api = served_api
    affected, unaffected = events.new_customer(), events.new_customer()
    await api.raise_alert(events.alert(affected, severity="low", title="Acme desk lamp DL-2"))
    critical = events.alert(affected, severity="critical", title="Acme kettle KX-1")
    await api.raise_alert(critical)

    await sign_in(page, api, affected)
    banner = page.locator("#recall-banner")
    await expect(banner).to_be_visible()
    await expect(banner.get_by_role("heading", level=2)).to_contain_text(
        "Recall: 2 products you bought need your attention"
    )
    most_severe = banner.get_by_role("link", name=re.compile("Acme kettle KX-1"))
    await expect(most_severe).to_have_attribute("href", f"/recalls/{critical.alert_id}")
    # The banner sits above the orders.
    banner_box, order_box = (
        await banner.bounding_box(),
        await page.locator("article.order").first.bounding_box(),
    )
    assert banner_box and order_box and banner_box["y"] < order_box["y"]
    await shot(page, "01-orders-banner-affected")
    await most_severe.click()
    await expect(page.get_by_role("heading", level=1)).to_contain_text("Acme kettle KX-1")

    await sign_in(page, api, unaffected)
    await expect(page.get_by_role("heading", level=1)).to_have_text("Your Orders")
    await expect(page.locator("#recall-banner")).to_have_count(0)
    await shot(page, "02-orders-no-banner-unaffected")

    # Signed out: the orders page explains how to sign in and shows nobody's data.
    await page.context.clear_cookies()
    await page.goto(f"{api.base_url}/orders")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Sign in to see your recalls")
    await expect(page.locator("#recall-banner")).to_have_count(0)


async def test_recalls_page_lists_the_alert_with_hazard_images_and_stop_using_first(
    served_api, events, page: Page
) -> None:
    api = served_api
    customer = events.new_customer()
    alert = with_content(
        events.alert(customer, title="Acme kettle KX-1", tier="possibly_affected"),
        images=[KETTLE_SVG],
        product_description="Cordless kettle, 1.7 l, white. Lots 2301-2317.",
    )
    await api.raise_alert(alert)

    await sign_in(page, api, customer, "/recalls")
    await expect(page).to_have_title(re.compile("Your recalls and product safety alerts"))
    article = page.locator(f"#alert-{alert.alert_id}")
    await expect(article.get_by_role("heading", level=2)).to_have_text("Recall: Acme kettle KX-1")
    headings = await article.get_by_role("heading", level=3).all_inner_texts()
    assert headings[:2] == ["Stop using this product", "The hazard"], headings
    await expect(article).to_contain_text("Unplug the kettle and stop using it.")
    await expect(article).to_contain_text("The base can overheat and cause burns.")
    await expect(
        article.get_by_role("img", name="Photo 1 of the recalled product: Acme kettle KX-1")
    ).to_be_visible()
    await expect(article).to_contain_text("order ord-20250314-1, bought on 14 Mar 2025, 2 unit(s)")
    await expect(article).to_contain_text("Your purchase may be affected.")
    await expect(article.get_by_role("button", name="My unit is not affected")).to_be_visible()
    await expect(article.get_by_role("radio", name="A free replacement")).to_be_visible()
    await shot(page, "03-recalls-list")


async def test_choosing_a_refund_shows_the_cases_progress(served_api, events, page: Page) -> None:
    api = served_api
    customer = events.new_customer()
    alert = events.alert(
        customer, title="Acme kettle KX-1", remedies=("refund_on_destruction", "replacement")
    )
    await api.raise_alert(alert)

    await sign_in(page, api, customer, "/recalls")
    article = page.locator(f"#alert-{alert.alert_id}")
    await article.get_by_label(
        "A full refund of the price you paid, on proof of destruction"
    ).check()
    await shot(page, "04-remedy-chosen-before-submit")
    await article.get_by_role("button", name="Confirm my choice").click()
    await page.wait_for_url(re.compile(r"done=remedy"))
    article = page.locator(f"#alert-{alert.alert_id}")
    await expect(article.get_by_role("status")).to_contain_text("Your choice was recorded")
    await expect(article).to_contain_text("Status: Requested")
    await expect(article.get_by_role("radio")).to_have_count(0)
    await shot(page, "05-remedy-requested")

    remedy = (
        await api.client.get(f"/v1/me/alerts/{alert.alert_id}/remedy", headers=api.auth(customer))
    ).json()
    assert remedy["remedy"] == "refund_on_destruction"
    request_id = remedy["request_id"]
    await api.publish(
        events.case_transitioned(
            request_id, alert, state="requested", transition="open", from_state=None
        )
    )
    await api.publish(
        events.case_transitioned(
            request_id,
            alert,
            state="refunded",
            transition="issue_refund",
            from_state="requested",
            refunded="39.98",
            currency="EUR",
        )
    )

    async def refunded() -> bool:
        await page.goto(f"{api.base_url}/recalls/{alert.alert_id}")
        return "Status: Refunded" in await page.locator("main").inner_text()

    await eventually(refunded, timeout=15, interval=0.3)
    main = page.locator("main")
    await expect(main).to_contain_text("€39.98 has been refunded to your original payment method.")
    steps = page.get_by_role("list", name="Progress").get_by_role("listitem")
    await expect(steps).to_have_text(["Done: Requested", "Done: Refunded"])
    await shot(page, "06-remedy-refunded")


async def test_the_remedy_form_works_with_the_keyboard_alone(
    served_api, events, page: Page
) -> None:
    api = served_api
    customer = events.new_customer()
    alert = events.alert(
        customer, title="Acme kettle KX-1", remedies=("replacement", "refund_on_destruction")
    )
    await api.raise_alert(alert)
    await sign_in(page, api, customer, f"/recalls/{alert.alert_id}")

    async def active() -> dict:
        return await page.evaluate(
            "() => { const e = document.activeElement; const s = getComputedStyle(e);"
            " return {tag: e.tagName, type: e.type || '', name: e.name || '', value: e.value || '',"
            " text: (e.innerText || '').trim(), checked: !!e.checked, outline: s.outlineStyle,"
            " outlineWidth: s.outlineWidth}; }"
        )

    for _ in range(40):  # Tab from the top of the page to the remedy choice
        await page.keyboard.press("Tab")
        if (await active())["name"] == "remedy":
            break
    focused = await active()
    assert focused["name"] == "remedy" and focused["type"] == "radio", focused
    assert focused["outline"] != "none" and focused["outlineWidth"] != "0px", (
        f"no visible focus: {focused}"
    )
    await page.keyboard.press("Space")
    focused = await active()
    assert focused["checked"] and focused["value"] == "replacement", focused
    for _ in range(5):
        await page.keyboard.press("Tab")
        if (await active())["tag"] == "BUTTON":
            break
    focused = await active()
    assert focused["text"] == "Confirm my choice", focused
    assert focused["outline"] != "none", f"no visible focus on the button: {focused}"
    await shot(page, "07-keyboard-focus-on-submit")
    await page.keyboard.press("Enter")
    await page.wait_for_url(re.compile(r"done=remedy"))
    await expect(page.locator("main")).to_contain_text("You chose: A free replacement")
    await expect(page.locator("main")).to_contain_text("Status: Requested")
    await shot(page, "08-keyboard-remedy-requested")


async def test_the_german_page_shows_german_strings_and_the_sellers_translation(
    served_api, events, page: Page
) -> None:
    api = served_api
    customer = events.new_customer()
    alert = with_content(
        events.alert(customer, title="Acme kettle KX-1"),
        texts={
            "de": ev.LocalizedText(
                title="Acme Wasserkocher KX-1",
                hazard="Der Sockel kann überhitzen und Verbrennungen verursachen.",
                stop_using="Ziehen Sie den Stecker und verwenden Sie den Wasserkocher nicht mehr.",
            )
        },
    )
    await api.raise_alert(alert)
    await sign_in(page, api, customer, "/recalls?lang=de")
    assert await page.get_attribute("html", "lang") == "de"
    await expect(page.get_by_role("heading", level=1)).to_have_text(
        "Ihre Rückrufe und Produktsicherheitswarnungen"
    )
    article = page.locator(f"#alert-{alert.alert_id}")
    await expect(article.get_by_role("heading", level=2)).to_have_text(
        "Rückruf: Acme Wasserkocher KX-1"
    )
    await expect(article).to_contain_text("Verwenden Sie dieses Produkt nicht mehr")
    await expect(article).to_contain_text("Der Sockel kann überhitzen")
    await expect(article.get_by_role("button", name="Auswahl bestätigen")).to_be_visible()
    await shot(page, "09-recalls-german")
    # The choice is remembered: the orders page is German too, without ?lang.
    await page.goto(f"{api.base_url}/orders")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Meine Bestellungen")
    await expect(page.locator("#recall-banner")).to_contain_text("Rückruf")


async def test_another_customers_alert_url_is_a_404_page(
    served_api, events, browser: Browser, page: Page
) -> None:
    api = served_api
    owner, other = events.new_customer(), events.new_customer()
    alert = events.alert(owner, title="Owner-only kettle")
    await api.raise_alert(alert)
    await sign_in(page, api, other)
    response = await page.goto(f"{api.base_url}/recalls/{alert.alert_id}")
    assert response is not None and response.status == 404
    await expect(page.get_by_role("heading", level=1)).to_have_text("Alert not found")
    assert "Owner-only kettle" not in await page.content()
    await shot(page, "10-other-customers-alert-404")
    # Chromium logs the document's own 404 status; that one is expected here.
    expected = "the server responded with a status of 404"
    browser.console_errors[:] = [e for e in browser.console_errors if expected not in e]


async def test_the_alert_pages_label_check_by_best_before_date(
    served_api, events, browser: Browser, page: Page
) -> None:
    """The date the recall's scope limits, picked in the alert page's date input: the unit is
    confirmed affected; a malformed date (no date input) is the form again, the field named."""
    from datetime import UTC, date, datetime

    api = served_api
    customer = events.new_customer()
    alert = events.alert(customer, title="Acme kettle KX-1", tier="confirmed")
    window = ev.DateWindow(start=date(2027, 3, 1), end=date(2027, 3, 31))
    recall = ev.RecallSnapshot(
        recall_id=alert.recall_id,
        version=1,
        seller_id="seller-1",
        published_at=datetime(2026, 11, 20, tzinfo=UTC),
        rules=[ev.ScopeRule(product_ids=["prod-kettle"], best_before=window)],
        content=alert.recall,
    )
    await api.publish(ev.RecallPublished(recall=recall))

    async def public():
        return (await api.client.get(f"/public/recalls/{recall.recall_id}")).is_success or None

    await eventually(public, timeout=15, interval=0.1)
    await api.raise_alert(alert)
    await sign_in(page, api, customer, f"/recalls/{alert.alert_id}")
    await page.get_by_label("Best before date").fill("2027-03-15")
    await page.get_by_role("button", name="Check").click()
    await page.wait_for_url(re.compile(r"done=label_confirmed"))
    await expect(page.get_by_role("status")).to_contain_text("Your unit is affected")
    await shot(page, "10-label-check-by-date")

    # A browser without a date input sends what was typed: the form comes back, the field named.
    await page.get_by_label("Best before date").evaluate("e => { e.type = 'text'; }")
    await page.get_by_label("Best before date").fill("15.03.2027")
    await page.get_by_role("button", name="Check").click()
    await expect(page.get_by_role("alert")).to_contain_text("One of the dates you typed")
    await expect(page.get_by_label("Best before date")).to_have_accessible_description(
        re.compile("This is not a date")
    )
    await expected_422_logged(browser.console_errors)
    await shot(page, "11-label-check-bad-date")
