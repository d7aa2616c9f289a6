"""Pieces of the pages that need no database: language choice, formats, the alert view, remedy
progress."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from customer_api import i18n
from customer_api.models import CustomerAlert, RemedyRequest
from customer_api.pages import _safe_next, alert_view
from recall_shared import events as ev


@pytest.mark.parametrize(
    ("header", "want"),
    [
        (None, None),
        ("", None),
        ("de", "de"),
        ("de-DE,de;q=0.9,en;q=0.8", "de"),
        ("fr-FR, en-GB;q=0.7, de;q=0.9", "fr"),
        ("pt-BR, nl;q=0.5", "nl"),
        ("pt, ja", None),
        ("en;q=0, de;q=0.1", "de"),
        ("EN-us", "en"),
        ("de;q=abc, en;q=0.5", "en"),
    ],
)
def test_accept_language(header: str | None, want: str | None) -> None:
    assert i18n.parse_accept_language(header) == want


@pytest.mark.parametrize("lang", [x for x in i18n.SUPPORTED if x != "en"])
def test_every_language_translates_every_string(lang: str) -> None:
    """A missing, empty, fuzzy or stale translation, or one with other placeholders, fails."""
    assert i18n.catalogs().missing(lang) == []
    assert i18n.catalogs().unused(lang) == []


def test_a_string_without_translation_is_caught_and_shown_in_english() -> None:
    from recall_shared.i18n import Catalogs

    catalogs = Catalogs("customer_api", {**i18n.catalogs().english, "new.key": "Brand new"})
    assert catalogs.missing("de") == ["new.key"]
    assert catalogs.messages("de")["new.key"] == "Brand new"
    changed = Catalogs("customer_api", {**i18n.catalogs().english, "hazard": "The danger"})
    assert changed.missing("fr") == ["hazard"]  # translated for another English text


def test_dates_and_money_by_language() -> None:
    d = datetime(2025, 3, 4, tzinfo=UTC)
    assert i18n.fmt_date(d, "en") == "4 Mar 2025"
    assert i18n.fmt_date(d, "de") == "04.03.2025"
    assert i18n.fmt_date(d, "fr") == "4 mars 2025"
    assert i18n.fmt_date(d, "pl") == "4 mar 2025"
    assert i18n.fmt_money(Decimal("1234.5"), "EUR", "en") == "€1,234.50"
    assert i18n.fmt_money(Decimal("1234.5"), "EUR", "de") == "1.234,50\xa0€"
    assert i18n.fmt_money(Decimal("1234.5"), "PLN", "pl") == "1\xa0234,50\xa0zł"
    assert i18n.fmt_money(Decimal("1234.5"), None, "nl") == "1.234,50"


@pytest.mark.parametrize(
    ("value", "want"),
    [
        (None, "/recalls"),
        ("/orders", "/orders"),
        ("https://evil.example", "/recalls"),
        ("//evil.example", "/recalls"),
        ("/\\evil.example", "/recalls"),
        ("orders", "/recalls"),
    ],
)
def test_sign_in_redirects_only_to_local_paths(value: str | None, want: str) -> None:
    assert _safe_next(value) == want


def _alert(**recall: object) -> CustomerAlert:
    content = ev.RecallContent(
        title="Kettle",
        hazard="Burns.",
        severity="high",
        stop_using="Unplug it.",
        remedies=[ev.Remedy(type="refund_with_return", instructions="Pack it.")],
        **recall,
    )
    state = ev.AlertState(
        alert_id="a-1",
        alert_version=1,
        customer_id="c-1",
        recall_id="r-1",
        recall_version=1,
        seller_id=None,
        tier="possibly_affected",
        lines=[
            ev.AffectedLine(
                order_id="o-1",
                line_id="l-1",
                product_id="p-1",
                seller_id="s-1",
                purchased_at=datetime(2025, 1, 2, tzinfo=UTC),
                units=1,
                unit_price=Decimal("10"),
                currency="EUR",
                tier="possibly_affected",
                unknown_attributes=["lot"],
            )
        ],
        recall=content,
    )
    now = datetime.now(UTC)
    return CustomerAlert(
        alert_id="a-1",
        customer_id="c-1",
        recall_id="r-1",
        alert_version=1,
        status="open",
        resolution=None,
        severity_rank=1,
        state=state.model_dump(mode="json"),
        acknowledged_at=None,
        not_affected_at=None,
        created_at=now,
        updated_at=now,
    )


def test_alert_view_uses_the_translation_field_by_field() -> None:
    a = _alert(
        texts={
            "de": ev.LocalizedText(
                title="Wasserkocher", remedy_instructions={"refund_with_return": "Einpacken."}
            )
        }
    )
    de = alert_view(a, None, "de")
    assert de["title"] == "Wasserkocher" and de["hazard"] == "Burns."
    assert de["kind"] == "Rückruf"
    assert de["remedies"][0]["instructions"] == "Einpacken."
    assert "Chargennummer" in de["check_label"]
    en = alert_view(a, None, "en")
    assert en["title"] == "Kettle" and en["remedies"][0]["instructions"] == "Pack it."
    assert en["can_choose"] and en["can_declare"] and en["can_acknowledge"]


def test_unsafe_image_urls_are_dropped() -> None:
    a = _alert(images=["javascript:alert(1)", "//evil.example/x.png", "https://img.example/k.jpg"])
    assert [i["src"] for i in alert_view(a, None, "en")["images"]] == ["https://img.example/k.jpg"]


@pytest.mark.parametrize(
    ("state", "steps", "status"),
    [
        (
            "requested",
            [
                "Current step: Requested",
                "Next: Return label sent",
                "Next: Returned item received",
                "Next: Refunded",
            ],
            "Requested",
        ),
        (
            "item_received",
            [
                "Done: Requested",
                "Done: Return label sent",
                "Current step: Returned item received",
                "Next: Refunded",
            ],
            "Returned item received",
        ),
        (
            "refunded",
            [
                "Done: Requested",
                "Done: Return label sent",
                "Done: Returned item received",
                "Done: Refunded",
            ],
            "Refunded",
        ),
        ("rejected", ["Done: Requested", "Done: Declined"], "Declined"),
        (
            "referred_to_seller",
            [
                "Done: Requested",
                "Current step: Passed to the seller",
                "Next: Return label sent",
                "Next: Returned item received",
                "Next: Refunded",
            ],
            "Passed to the seller",
        ),
    ],
)
def test_remedy_progress_in_words(state: str, steps: list[str], status: str) -> None:
    now = datetime.now(UTC)
    remedy = RemedyRequest(
        request_id="q",
        alert_id="a-1",
        customer_id="c-1",
        remedy="refund_with_return",
        case_state=state,
        refunded_amount=Decimal("10") if state == "refunded" else Decimal("0"),
        currency="EUR",
        reason=None,
        requested_at=now,
        updated_at=now,
    )
    view = alert_view(_alert(), remedy, "en")
    p = view["progress"]
    assert [f"{s['marker']}: {s['label']}" for s in p["steps"]] == steps
    assert p["state"] == status
    assert not view["can_choose"] and not view["can_declare"]
    assert (p["refunded"] is not None) == (state == "refunded")
