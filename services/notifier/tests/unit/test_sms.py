"""The SMS channel without a network: Twilio's request signature (on a vector from Twilio's own
library tests), the Twilio adapter against the sandbox that implements the Messages API, what the
sandbox reports back, the wording of an SMS notice, and the channel policy."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest

from notifier.domain import (
    ClaimedNotice,
    DeliveryReport,
    Hold,
    Send,
    classify_twilio,
    decide_sms,
    fallback_channel,
)
from notifier.sms import SmsError, TwilioSms, twilio_signature
from notifier.sms_sandbox import SandboxSms, create_sms_sandbox_app
from notifier.sms_sender import sms_text
from recall_shared import events as ev

CALLBACK = "https://notifier.example/v1/webhooks/twilio?notice_id=n-1"


def test_the_signature_is_twilios() -> None:
    # twilio-ruby's spec/util/request_validator_spec.rb, "should properly validate a Twilio Voice
    # request".
    params = {
        "ToState": "California",
        "CalledState": "California",
        "Direction": "inbound",
        "FromState": "CA",
        "AccountSid": "ACba8bc05eacf94afdae398e642c9cc32d",
        "Caller": "+14153595711",
        "CallerZip": "94108",
        "CallerCountry": "US",
        "From": "+14153595711",
        "FromCity": "SAN FRANCISCO",
        "CallerCity": "SAN FRANCISCO",
        "To": "+14157669926",
        "FromZip": "94108",
        "FromCountry": "US",
        "ToCity": "",
        "CallStatus": "ringing",
        "CalledCity": "",
        "CallerState": "CA",
        "CalledZip": "",
        "ToZip": "",
        "ToCountry": "US",
        "CallSid": "CA136d09cd59a3c0ec8dbff44da5c03f31",
        "CalledCountry": "US",
        "Called": "+14157669926",
        "ApiVersion": "2010-04-01",
        "ApplicationSid": "AP44efecad51364e80b133bb7c07eb8204",
    }
    url = "http://twiliotests.heroku.com/validate/voice"
    token = "2bd9e9638872de601313dc77410d3b23"
    assert twilio_signature(token, url, params.items()) == "oVb2kXoVy8GEfwBDjR8bk/ZZ6eA="


def adapter(sandbox: SandboxSms, *, token: str | None = None) -> TwilioSms:
    app = create_sms_sandbox_app(sandbox)
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://sms-sandbox"
    )
    return TwilioSms(
        account_sid=sandbox.account_sid,
        auth_token=token or sandbox.auth_token,
        from_="+15005550006",
        base_url="http://sms-sandbox",
        client=client,
    )


async def test_the_adapter_sends_through_the_sandbox_and_hears_back_signed() -> None:
    heard: list[tuple[str, dict[str, str], str]] = []

    async def callback(url: str, data: dict[str, str], headers: dict[str, str]) -> None:
        heard.append((url, data, headers["X-Twilio-Signature"]))

    sandbox = SandboxSms(callback=callback)
    sms = adapter(sandbox)
    accepted = await sms.send(to="+4915112345678", body="Recall: stop", status_callback=CALLBACK)
    assert accepted.provider_id.startswith("SMsandbox") and accepted.status == "queued"
    assert sandbox.messages[accepted.provider_id]["body"] == "Recall: stop"
    for _ in range(50):
        if len(heard) == 2:
            break
        await asyncio.sleep(0.01)
    assert [d["MessageStatus"] for _, d, _ in heard] == ["sent", "delivered"]
    for url, data, signature in heard:
        assert url == CALLBACK and data["MessageSid"] == accepted.provider_id
        assert signature == twilio_signature(sandbox.auth_token, url, data.items())


async def test_an_unreachable_handset_is_reported_undelivered() -> None:
    heard: list[dict[str, str]] = []

    async def callback(url: str, data: dict[str, str], headers: dict[str, str]) -> None:
        heard.append(data)

    sms = adapter(SandboxSms(callback=callback))
    await sms.send(to="+15005550003", body="Recall", status_callback=CALLBACK)
    for _ in range(50):
        if len(heard) == 2:
            break
        await asyncio.sleep(0.01)
    assert (heard[-1]["MessageStatus"], heard[-1]["ErrorCode"]) == ("undelivered", "30003")


@pytest.mark.parametrize(
    ("to", "code"),
    [("+15005550001", "21211"), ("004915112345678", "21211"), ("+15005550009", "21614")],
)
async def test_numbers_that_cannot_take_an_sms_are_refused_for_good(to: str, code: str) -> None:
    with pytest.raises(SmsError) as refused:
        await adapter(SandboxSms()).send(to=to, body="Recall", status_callback=CALLBACK)
    assert refused.value.permanent and refused.value.code == code


async def test_wrong_credentials_are_not_the_numbers_fault() -> None:
    with pytest.raises(SmsError) as refused:
        await adapter(SandboxSms(), token="wrong").send(
            to="+4915112345678", body="Recall", status_callback=CALLBACK
        )
    assert not refused.value.permanent and refused.value.code == "20003"


def alert(title: str = "Acme kettle KX-1") -> ev.AlertState:
    return ev.AlertState(
        alert_id="5b0c1f0e-3c2a-4f7b-9d7e-1a2b3c4d5e6f",
        alert_version=1,
        customer_id="c-1",
        recall_id="rc-1",
        recall_version=1,
        seller_id="s-1",
        tier="confirmed",
        lines=[
            ev.AffectedLine(
                order_id="o-1",
                line_id="l-1",
                product_id="p-1",
                seller_id="s-1",
                units=1,
                currency="EUR",
                purchased_at=datetime(2025, 1, 1, tzinfo=UTC),
                unit_price=Decimal("1"),
            )
        ],
        recall=ev.RecallContent(
            title=title,
            hazard="Burns.",
            severity="high",
            stop_using="Stop.",
            remedies=[ev.Remedy(type="replacement")],
        ),
    )


def test_an_sms_notice_says_what_to_do_and_where_in_few_characters() -> None:
    text = sms_text(alert(), "initial", "https://shop.example/account/")
    assert text == (
        "Safety recall: Acme kettle KX-1, which you bought from us. Stop using it now. "
        "Your remedy: https://shop.example/account/recalls/5b0c1f0e-3c2a-4f7b-9d7e-1a2b3c4d5e6f"
    )
    assert len(text) <= 306, "two segments at most"
    long = sms_text(alert("K" * 200 + "\u202e"), "update", "https://shop.example")
    assert "\u202e" not in long and "K" * 59 + "…" in long
    assert sms_text(alert(), "withdrawal", "https://s.example").startswith("Recall correction")


def test_an_sms_notice_is_in_the_customers_language() -> None:
    recall = alert().recall.model_copy(
        update={"texts": {"de": ev.LocalizedText(title="Acme Wasserkocher KX-1")}}
    )
    translated = alert().model_copy(update={"recall": recall})
    de = sms_text(translated, "initial", "https://shop.example/", "de-AT")
    assert de == (
        "Sicherheitsrückruf: Acme Wasserkocher KX-1, bei uns gekauft. Benutzen Sie es nicht mehr. "
        "Ihre Abhilfe: https://shop.example/recalls/5b0c1f0e-3c2a-4f7b-9d7e-1a2b3c4d5e6f"
    )
    pl = sms_text(alert(), "withdrawal", "https://shop.example/", "pl")
    assert pl.startswith("Korekta wycofania:") and "Acme kettle KX-1" in pl, "untranslated title"
    assert sms_text(alert(), "initial", "https://s.example", "xx").startswith("Safety recall")


def test_the_channel_policy_by_severity() -> None:
    def fb(**kw: object) -> str | None:
        values: dict = dict(
            channel="email",
            severity="high",
            kind="initial",
            phone="+4915112345678",
            sms_opt_out=False,
            sms_available=True,
        )
        values.update(kw)
        return fallback_channel(**values)

    assert fb() == "sms"
    assert fb(severity="critical") == "sms" and fb(severity="medium") == "sms"
    assert fb(severity="low") is None, "low severity: email only"
    assert fb(kind="reminder") is None, "no reminders by SMS"
    assert fb(phone=None) is None and fb(sms_opt_out=True) is None
    assert fb(sms_available=False) is None
    assert fb(channel="sms") is None, "after SMS nothing is left"


def test_an_sms_notice_follows_the_email_rules() -> None:
    notice = ClaimedNotice("initial", "purchaser", "open", False, False, None, None)
    assert decide_sms(notice, "+4915112345678") == Send("sms", "+4915112345678", "purchaser")
    assert decide_sms(notice, None) == Hold("waiting_contact")
    withdrawn = ClaimedNotice("initial", "purchaser", "withdrawn", False, False, None, None)
    assert decide_sms(withdrawn, "+4915112345678") == Hold("cancelled", "alert withdrawn")


def test_twilio_statuses_mean_what_its_docs_say() -> None:
    assert classify_twilio("delivered") == DeliveryReport("delivered")
    undelivered = classify_twilio("undelivered", "30003")
    assert undelivered is not None and (undelivered.kind, undelivered.bounce_type) == (
        "bounced",
        "hard",
    )
    assert classify_twilio("failed", "30007") is not None
    assert classify_twilio("sent") is None and classify_twilio("queued") is None
