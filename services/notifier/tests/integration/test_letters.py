"""Letters end to end: a customer with no digital contact, or whose every digital channel failed,
gets a letter in the daily batch: their PDF (read back: the recall page as text and QR code) and a
row in the manifest; the notice is sent with notification.letter_sent.v1, and the customer is no
longer in the unreachable queue. The batch runs on the service's clock at its hour."""

from __future__ import annotations

import argparse
import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import zxingcpp
from pypdf import PdfReader

from notifier.cli import letter_batch, letter_returns
from notifier.clock import FakeClock
from notifier.domain import gift_recipients
from recall_shared import events as ev
from recall_shared.testing import eventually
from recall_shared.topics import NOTIFICATIONS

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

ADDRESS = ev.PostalAddress(
    lines=["Hauptstraße 5"], postal_code="10115", city="Berlin", country="DE"
)
# 04:00 by the service's clock: the batch hour (5) is still to come.
START = datetime(2026, 12, 1, 4, 0, tzinfo=UTC)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def post(
    start_notifier: Any, twilio_sandbox: Any, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Any]:
    clock = FakeClock(START)
    folder = tmp_path_factory.mktemp("letters")
    async with (
        twilio_sandbox() as (sandbox, via_sandbox),
        start_notifier(
            clock=clock,
            **via_sandbox,
            letter_dir=str(folder),
            letter_batch_hour=5,
            letter_batch_poll_s=0.1,
        ) as n,
    ):

        async def callback(url: str, data: dict[str, str], headers: dict[str, str]) -> None:
            await n.client.post(url, data=data, headers=headers)

        sandbox.callback = callback
        n.clock, n.folder = clock, folder
        yield n


def by_channel(notices: list[dict]) -> dict[str, dict]:
    return {n["channel"]: n for n in notices}


async def postal_customer(post: Any, kit: Any, *, phone: str | None = None, **extra: Any) -> str:
    cid = kit.new_customer()
    event = kit.customer(cid, name="Zofia Żółć", locale="pl").model_copy(
        update={"postal_address": ADDRESS, "phone": phone, **extra}
    )
    await post.publish(event)
    return cid


def read_pdf(path: Path) -> tuple[str, list[str]]:
    reader = PdfReader(path)
    text = " ".join(" ".join(p.extract_text().split()) for p in reader.pages)
    codes = [
        c.text for p in reader.pages for i in p.images for c in zxingcpp.read_barcodes(i.image)
    ]
    return text, codes


def manifest(folder: Path) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    for path in sorted(folder.glob("letters-*/manifest.csv")):
        rows += csv.DictReader(io.StringIO(path.read_text(encoding="utf-8")))
    return rows


async def test_no_digital_contact_means_a_letter_in_the_daily_batch(post: Any, kit: Any) -> None:
    cid = await postal_customer(post, kit)
    alert = kit.alert(cid)
    await post.publish(kit.raised(alert))
    notices = await post.wait_for_notices(
        alert.alert_id, lambda ns: by_channel(ns).get("letter", {}).get("status") == "pending"
    )
    assert by_channel(notices)["email"]["status"] == "waiting_contact"
    queue = (await post.client.get("/v1/unreachable")).json()
    assert cid not in [i["customer_id"] for i in queue["items"]], "a letter is on its way"
    assert manifest(post.folder) == [], "not before the batch hour"

    post.clock.advance(hours=1)  # 05:00: the day's batch
    notices = await post.wait_for_notices(
        alert.alert_id, lambda ns: by_channel(ns)["letter"]["status"] == "sent"
    )
    letter = by_channel(notices)["letter"]
    assert letter["message_id"].startswith("letters-20261201T05")
    (row,) = [r for r in manifest(post.folder) if r["customer_id"] == cid]
    assert row["notice_ids"] == letter["notice_id"]
    assert (row["recipient"], row["address_lines"], row["city"]) == (
        "Zofia Żółć",
        "Hauptstraße 5",
        "Berlin",
    )
    text, codes = read_pdf(post.folder / letter["message_id"] / row["file"])
    page = f"{kit.portal.rstrip('/')}/recalls/{alert.alert_id}"
    assert codes == [page] and page in text
    assert "Piszemy do Ciebie listownie" in text and alert.recall.hazard in text

    async def sent_event() -> dict | None:
        for _, env, body in await kit.read_all(post.topic(NOTIFICATIONS)):
            if (
                env.type == "notification.letter_sent.v1"
                and body["notice_id"] == letter["notice_id"]
            ):
                return body
        return None

    body = await eventually(sent_event, timeout=15)
    assert body["channel"] == "letter" and body["batch_id"] == letter["message_id"]
    queue = (await post.client.get("/v1/unreachable")).json()
    assert cid not in [i["customer_id"] for i in queue["items"]]


async def test_the_letter_batch_command_writes_the_queued_letters(
    post: Any, kit: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cid = await postal_customer(post, kit)
    alert = kit.alert(cid)
    await post.publish(kit.raised(alert))
    await post.wait_for_notices(
        alert.alert_id, lambda ns: by_channel(ns).get("letter", {}).get("status") == "pending"
    )
    settings = post.settings.model_copy(update={"letter_dir": str(tmp_path)})
    code = await letter_batch(settings, argparse.Namespace(limit=1000, keep_progress=False))
    assert code == 0
    out = capsys.readouterr().out
    assert "1 letter(s), 1 notice(s)" in out and str(tmp_path) in out
    (row,) = manifest(tmp_path)
    assert row["customer_id"] == cid
    notices = await post.notices(alert.alert_id)
    assert by_channel(notices)["letter"]["status"] == "sent"


async def test_every_digital_channel_failed_means_a_letter(post: Any, kit: Any) -> None:
    # +15005550003: the sandbox reports the SMS undelivered (a hard bounce), as Twilio would.
    cid = await postal_customer(post, kit, phone="+15005550003")
    alert = kit.alert(cid)
    await post.publish(kit.raised(alert))
    notices = await post.wait_for_notices(
        alert.alert_id, lambda ns: by_channel(ns).get("letter", {}).get("status") == "pending"
    )
    assert by_channel(notices)["sms"]["delivery"] == "bounced"
    result = await post.app.state.letters.run_batch()
    assert result.letters >= 1
    notices = await post.wait_for_notices(
        alert.alert_id, lambda ns: by_channel(ns)["letter"]["status"] == "sent"
    )
    assert len(notices) == 3, "email, SMS, letter: never more than the policy allows"


async def test_the_policy_and_the_opt_out_keep_letters_away(post: Any, kit: Any) -> None:
    refused = await postal_customer(post, kit, letter_opt_out=True)
    medium = await postal_customer(post, kit)
    a = kit.alert(refused)
    b = kit.alert(medium)
    b = b.model_copy(update={"recall": b.recall.model_copy(update={"severity": "medium"})})
    for alert in (a, b):
        await post.publish(kit.raised(alert))
    for alert in (a, b):
        (only,) = await post.wait_for_notices(
            alert.alert_id, lambda ns: len(ns) == 1 and ns[0]["status"] == "waiting_contact"
        )
        assert only["channel"] == "email"
    queue = (await post.client.get("/v1/unreachable", params={"reason": "no_contact"})).json()
    assert {refused, medium} <= {i["customer_id"] for i in queue["items"]}


async def test_a_withdrawn_alert_takes_its_letter_out_of_the_batch(post: Any, kit: Any) -> None:
    cid = await postal_customer(post, kit)
    alert = kit.alert(cid)
    await post.publish(kit.raised(alert))
    await post.wait_for_notices(
        alert.alert_id, lambda ns: by_channel(ns).get("letter", {}).get("status") == "pending"
    )
    await post.publish(kit.withdrawn(alert))
    await post.wait_for_notices(
        alert.alert_id, lambda ns: by_channel(ns)["letter"]["status"] == "cancelled"
    )
    await post.app.state.letters.run_batch()
    assert by_channel(await post.notices(alert.alert_id))["letter"]["status"] == "cancelled"
    assert cid not in {r["customer_id"] for r in manifest(post.folder)}


async def test_a_gift_recipient_with_only_a_postal_address_gets_a_letter(
    post: Any, kit: Any
) -> None:
    buyer = kit.new_customer()
    await post.publish(kit.customer(buyer, email_=kit.new_email()))
    alert = kit.alert(buyer)
    gil = ev.GiftRecipient(name="Gil Graf", locale="de", postal_address=ADDRESS)
    gift = alert.lines[0].model_copy(update={"is_gift": True, "gift_recipient": gil})
    alert = alert.model_copy(update={"lines": [gift]})
    await post.publish(kit.raised(alert))

    def gil_letter(ns: list[dict]) -> dict | None:
        return next(
            (n for n in ns if n["recipient_role"] == "gift_recipient" and n["channel"] == "letter"),
            None,
        )

    notices = await post.wait_for_notices(
        alert.alert_id, lambda ns: (gil_letter(ns) or {}).get("status") == "pending"
    )
    letter = gil_letter(notices)
    assert letter is not None
    assert {(n["recipient_role"], n["channel"]) for n in notices} == {
        ("purchaser", "email"),
        ("gift_recipient", "email"),
        ("gift_recipient", "letter"),
    }, "no SMS without a phone: the letter follows the email at once"
    await post.app.state.letters.run_batch()
    notices = await post.wait_for_notices(
        alert.alert_id, lambda ns: (gil_letter(ns) or {}).get("status") == "sent"
    )
    letter = gil_letter(notices)
    assert letter is not None
    (row,) = [r for r in manifest(post.folder) if r["notice_ids"] == letter["notice_id"]]
    (gil_id,) = gift_recipients(alert)
    assert row["customer_id"] == gil_id, "the letter is the recipient's, not the buyer's"
    assert (row["recipient"], row["address_lines"], row["city"]) == (
        "Gil Graf",
        "Hauptstraße 5",
        "Berlin",
    )
    text, _ = read_pdf(post.folder / letter["message_id"] / row["file"])
    assert "geschenkt bekommen" in text, "told as a gift's recipient, in their language"


async def test_a_returned_letter_is_a_bounce_and_its_address_is_not_written_to_again(
    post: Any, kit: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cid = await postal_customer(post, kit)
    alert = kit.alert(cid)
    await post.publish(kit.raised(alert))
    await post.wait_for_notices(
        alert.alert_id, lambda ns: by_channel(ns).get("letter", {}).get("status") == "pending"
    )
    await post.app.state.letters.run_batch()
    letter = by_channel(
        await post.wait_for_notices(
            alert.alert_id, lambda ns: by_channel(ns)["letter"]["status"] == "sent"
        )
    )["letter"]
    (row,) = [r for r in manifest(post.folder) if r["notice_ids"] == letter["notice_id"]]
    returns = tmp_path / "returns.csv"
    returns.write_text(
        f"letter_id,returned_on,reason\r\n{row['letter_id']},2026-12-04,moved away\r\n"
        "letters-19990101T000000Z-000000-000001,,\r\n",
        encoding="utf-8",
    )
    args = argparse.Namespace(file=str(returns), keep_progress=False)
    assert await letter_returns(post.settings, args) == 0
    out = capsys.readouterr().out
    assert "1 letter(s) returned (1 notice(s)), 0 already recorded, 1 unknown" in out
    returned = by_channel(await post.notices(alert.alert_id))["letter"]
    assert (returned["delivery"], returned["bounce_type"], returned["delivery_status"]) == (
        "bounced",
        "hard",
        "returned",
    )
    assert returned["delivery_detail"] == "moved away"

    async def returned_events() -> list[dict] | None:
        found = [
            body
            for _, env, body in await kit.read_all(post.topic(NOTIFICATIONS))
            if env.type == "notification.letter_returned.v1"
            and body["notice_id"] == letter["notice_id"]
        ]
        return found or None

    (body,) = await eventually(returned_events, timeout=15)
    assert (body["letter_id"], body["reason"]) == (row["letter_id"], "moved away")
    queue = (await post.client.get("/v1/unreachable")).json()
    assert cid in {i["customer_id"] for i in queue["items"]}, "nothing reaches them now"

    assert await letter_returns(post.settings, args) == 0, "the same file again"
    assert "0 letter(s) returned (0 notice(s)), 1 already recorded" in capsys.readouterr().out
    assert len(await returned_events() or []) == 1, "no second event"

    again = kit.alert(cid)
    await post.publish(kit.raised(again))
    (only,) = await post.wait_for_notices(
        again.alert_id, lambda ns: len(ns) == 1 and ns[0]["status"] == "waiting_contact"
    )
    assert only["channel"] == "email", "no letter to an address that came back"

    moved = ADDRESS.model_copy(update={"lines": ["Neue Straße 1"]})
    update = kit.customer(cid, name="Zofia Żółć", locale="pl").model_copy(
        update={"postal_address": moved}
    )
    await post.publish(update)
    await post.wait_for_notices(
        again.alert_id,
        lambda ns: by_channel(ns).get("letter", {}).get("status") == "pending",
    )


async def test_the_batch_runs_once_a_day(post: Any) -> None:
    batcher = post.app.state.letters

    async def ran_today() -> bool:
        return batcher.last_run_day == post.clock.now().strftime("%Y-%m-%d")

    await eventually(ran_today, timeout=10)
    post.clock.advance(timedelta(days=1))
    await eventually(ran_today, timeout=10)
