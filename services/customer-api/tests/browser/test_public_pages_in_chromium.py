"""The public recall pages in a real browser (Debian's headless Chromium, driven by Playwright):
the index, a recall page with its JSON-LD, the feed, in English and German, without sign-in; and
axe-core (``package.json`` here, installed by ``make install``) finds no accessibility violation.
"""

from __future__ import annotations

import contextlib
import json
import re
import tempfile
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
import pytest_asyncio
from playwright.async_api import BrowserContext, Page, async_playwright, expect

from recall_shared import events as ev
from recall_shared.testing import eventually

from .test_pages_in_chromium import (
    CHROMIUM,
    CHROMIUM_ARGS,
    KETTLE_SVG,
    SCREENSHOTS,
    expected_422_logged,
)

AXE = Path(__file__).parent / "node_modules" / "axe-core" / "axe.min.js"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's Chromium at /usr/bin/chromium"
    ),
    pytest.mark.skipif(
        not AXE.exists(), reason="needs axe-core: make install (npm ci in tests/browser)"
    ),
]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def context(served_api) -> AsyncIterator[tuple[BrowserContext, list[str]]]:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    with tempfile.TemporaryDirectory(prefix="public-pages-chromium-") as profile:
        async with async_playwright() as pw:
            ctx = await pw.chromium.launch_persistent_context(
                profile,
                executable_path=str(CHROMIUM),
                args=CHROMIUM_ARGS,
                headless=True,
                viewport={"width": 1100, "height": 900},
                locale="en-GB",
            )
            # axe is injected before the page's own scripts, beside its CSP (which would refuse
            # a <script> element; the pages have none).
            await ctx.add_init_script(path=str(AXE))
            ctx.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            ctx.on("weberror", lambda err: errors.append(str(err.error)))
            try:
                yield ctx, errors
            finally:
                with contextlib.suppress(Exception):
                    await ctx.close()


@pytest_asyncio.fixture(loop_scope="module")
async def page(context: tuple[BrowserContext, list[str]]) -> AsyncIterator[Page]:
    ctx, errors = context
    errors.clear()
    p = await ctx.new_page()
    try:
        yield p
    finally:
        await p.close()
    assert errors == [], f"the page logged errors: {errors}"


async def axe_violations(page: Page) -> list[dict]:
    result = await page.evaluate(
        "async () => { const r = await axe.run(document);"
        " return {violations: r.violations, passes: r.passes.length}; }"
    )
    assert result["passes"] > 10  # axe did run its rules on this page
    return [
        {"id": v["id"], "nodes": [n["target"] for n in v["nodes"]]} for v in result["violations"]
    ]


def recall() -> ev.RecallSnapshot:
    return ev.RecallSnapshot(
        recall_id=str(uuid.uuid4()),
        version=1,
        seller_id="seller-1",
        published_at=datetime(2026, 11, 20, 9, tzinfo=UTC),
        rules=[ev.ScopeRule(product_ids=["prod-kettle"], gtins=["00012345678905"])],
        content=ev.RecallContent.model_validate(
            {
                "title": "Acme kettle KX-1",
                "hazard": "The base can overheat and cause burns.",
                "severity": "high",
                "stop_using": "Unplug the kettle and stop using it.",
                "remedies": [{"type": "refund_with_return"}],
                "images": [KETTLE_SVG],
                "brand": "Acme",
                "helpline_phone": "+49 800 123 4567",
                "helpline_url": "https://acme.example/recall",
                "texts": {"de": {"title": "Acme Wasserkocher KX-1"}},
            }
        ),
    )


async def test_public_index_recall_page_and_feed_without_sign_in(served_api, page: Page) -> None:
    api, published = served_api, recall()
    await api.publish(ev.RecallPublished(recall=published))
    path = f"/public/recalls/{published.recall_id}"

    async def shown():
        return (await api.client.get(path)).status_code == 200 or None

    await eventually(shown, timeout=15, interval=0.1)

    await page.goto(f"{api.base_url}/public/recalls")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Product recalls")
    assert await axe_violations(page) == []
    await page.screenshot(path=str(SCREENSHOTS / "public-index.png"), full_page=True)

    await page.get_by_role("link", name="Acme kettle KX-1").click()
    await expect(page).to_have_url(f"{api.base_url}{path}?lang=en")
    await expect(page.get_by_role("heading", name="Stop using this product")).to_be_visible()
    await expect(page.get_by_role("link", name="+49 800 123 4567")).to_have_attribute(
        "href", "tel:+498001234567"
    )
    ld = json.loads(await page.locator('script[type="application/ld+json"]').text_content() or "")
    assert ld["about"]["brand"]["name"] == "Acme"
    assert await axe_violations(page) == []
    await page.screenshot(path=str(SCREENSHOTS / "public-recall.png"), full_page=True)

    await page.get_by_role("link", name="Deutsch").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Acme Wasserkocher KX-1")
    await expect(page.locator("html")).to_have_attribute("lang", "de")
    assert await axe_violations(page) == []

    feed = await page.request.get(f"{api.base_url}/public/recalls.atom")
    assert feed.ok and feed.headers["content-type"].startswith("application/atom+xml")
    titles = [
        t.text for t in ET.fromstring(await feed.body()).iter("{http://www.w3.org/2005/Atom}title")
    ]
    assert "Acme kettle KX-1" in titles
    assert await page.context.cookies() == []  # the public pages set none


async def test_a_withdrawn_recall_page_says_so_and_passes_axe(served_api, page: Page) -> None:
    api, withdrawn = served_api, recall()
    await api.publish(ev.RecallPublished(recall=withdrawn))
    await api.publish(
        ev.RecallClosed(
            recall=withdrawn,
            closed_at=datetime(2026, 11, 28, 15, tzinfo=UTC),
            withdrawn=True,
            reason="Issued in error.",
        )
    )
    path = f"/public/recalls/{withdrawn.recall_id}"

    async def shown():
        return "withdrawn on" in (await api.client.get(path)).text or None

    await eventually(shown, timeout=15, interval=0.1)
    await page.goto(f"{api.base_url}{path}")
    await expect(page.get_by_role("note").filter(has_text="Withdrawn.")).to_contain_text(
        "Reason given: Issued in error."
    )
    await expect(page.get_by_role("heading", name="Am I affected?")).to_have_count(0)
    assert await axe_violations(page) == []
    await page.screenshot(path=str(SCREENSHOTS / "public-recall-withdrawn.png"), full_page=True)


async def test_the_check_by_best_before_date_in_chromium_passes_axe(
    served_api, context: tuple[BrowserContext, list[str]], page: Page
) -> None:
    """The date the scope asks for, picked in Chromium's date input: answered; a malformed one
    (from a browser without a date input) named at its field, which describes itself by it."""
    api = served_api
    dated = recall().model_copy(
        update={
            "rules": [
                ev.ScopeRule(
                    product_ids=["prod-kettle"],
                    gtins=["00012345678905"],
                    best_before=ev.DateWindow(start=date(2027, 3, 1), end=date(2027, 3, 31)),
                )
            ]
        }
    )
    await api.publish(ev.RecallPublished(recall=dated))
    path = f"/public/recalls/{dated.recall_id}"

    async def shown():
        return (await api.client.get(path)).status_code == 200 or None

    await eventually(shown, timeout=15, interval=0.1)
    await page.goto(f"{api.base_url}{path}")
    date_input = page.get_by_label("Best before date")
    await expect(date_input).to_have_attribute("type", "date")
    await expect(page.get_by_label("Expiry date (use by)")).to_have_count(0)
    await page.get_by_label("Barcode number (GTIN, EAN or UPC)").fill("00012345678905")
    await date_input.fill("2027-03-15")
    await page.get_by_role("button", name="Check").click()
    await expect(page.get_by_role("status")).to_have_text(re.compile("is affected by this recall"))
    await expect(page.get_by_label("Best before date")).to_have_value("2027-03-15")
    assert await axe_violations(page) == []
    await page.screenshot(path=str(SCREENSHOTS / "public-recall-checked.png"), full_page=True)

    response = await page.goto(
        f"{api.base_url}{path}?gtin=00012345678905&best_before=31%2F03%2F2027#check"
    )
    assert response is not None and response.status == 422
    _, errors = context
    await expected_422_logged(errors)
    await expect(page.get_by_role("alert")).to_contain_text("One of the dates you typed")
    await expect(page.get_by_label("Best before date")).to_have_accessible_description(
        re.compile("This is not a date")
    )
    await expect(page.get_by_label("Best before date")).to_have_attribute("aria-invalid", "true")
    assert await axe_violations(page) == []
    await page.screenshot(path=str(SCREENSHOTS / "public-recall-bad-date.png"), full_page=True)
