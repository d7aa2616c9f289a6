"""Rendering a recall notice: wording regulators require, escaping of seller text, header safety."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from notifier.render import (
    NoticeRenderer,
    build_message,
    header_safe,
    pick_locale,
    serialize_message,
)
from recall_shared import events as ev

PORTAL = "https://shop.example/account/"


def alert(
    *,
    title: str = "Acme kettle KX-1",
    kind: ev.RecallKind = "recall",
    tier: ev.AlertTier = "confirmed",
    hazard: str = "The base can overheat and cause burns.",
    stop_using: str = "Unplug the kettle and do not use it again.",
    remedies: tuple[ev.RemedyType, ...] = ("refund_with_return", "replacement"),
    description: str = "A 1.7 l electric kettle.",
    contact: str = "recalls@acme.example",
    lines: list[ev.AffectedLine] | None = None,
) -> ev.AlertState:
    return ev.AlertState(
        alert_id="al-123",
        alert_version=1,
        customer_id="c-1",
        recall_id="rc-1",
        recall_version=1,
        seller_id="s-1",
        tier=tier,
        lines=lines
        or [
            ev.AffectedLine(
                order_id="ord-777",
                line_id="l-1",
                product_id="prod-kettle",
                title=title,
                gtin="00012345678905",
                model_number="KX-1",
                seller_id="s-1",
                purchased_at=datetime(2025, 3, 14, 10, 0, tzinfo=UTC),
                units=3,
                unit_price=Decimal("19.99"),
                currency="EUR",
                lot="L42",
            ),
        ],
        recall=ev.RecallContent(
            kind=kind,
            title=title,
            product_description=description,
            hazard=hazard,
            severity="high",
            stop_using=stop_using,
            remedies=[ev.Remedy(type=r, instructions="") for r in remedies],
            images=["https://img.example/kettle.jpg"],
            consumer_contact=contact,
        ),
    )


@pytest.fixture
def renderer() -> NoticeRenderer:
    return NoticeRenderer(PORTAL)


def render(
    renderer: NoticeRenderer,
    a: ev.AlertState,
    *,
    kind: ev.NoticeKind = "initial",
    locale: str = "en",
    name: str = "Alex",
    role: str = "purchaser",
):
    return renderer.render(a, kind=kind, locale=locale, recipient_name=name, recipient_role=role)


def test_english_recall_subject_names_the_recall(renderer: NoticeRenderer) -> None:
    r = render(renderer, alert())
    assert r.subject.startswith("Product safety recall:")
    assert "Acme kettle KX-1" in r.subject


def test_german_recall_subject_and_body(renderer: NoticeRenderer) -> None:
    r = render(renderer, alert(), locale="de-DE")
    assert r.subject.startswith("Produktsicherheitsrückruf:")
    assert "Verwenden Sie dieses Produkt ab sofort nicht mehr." in r.text
    assert "Guten Tag Alex," in r.text
    assert '<html lang="de">' in r.html


def test_unknown_locale_falls_back_to_english(renderer: NoticeRenderer) -> None:
    assert pick_locale("pt-BR") == "en"
    assert pick_locale(None) == "en"
    assert pick_locale("DE_at") == "de"
    assert pick_locale("fr-FR") == "fr"
    assert render(renderer, alert(), locale="pt").subject.startswith("Product safety recall:")


def test_safety_alert_subject(renderer: NoticeRenderer) -> None:
    r = render(renderer, alert(kind="safety_alert"))
    assert r.subject.startswith("Product safety alert:")
    assert "A safety alert has been issued" in r.text
    assert render(renderer, alert(kind="safety_alert"), locale="de").subject.startswith(
        "Produktsicherheitswarnung:"
    )


@pytest.mark.parametrize(
    ("kind", "suffix"),
    [
        ("update", "(updated)"),
        ("withdrawal", "(your purchase is not affected)"),
        ("reminder", "(reminder)"),
    ],
)
def test_follow_up_notices_say_what_they_are(
    renderer: NoticeRenderer, kind: ev.NoticeKind, suffix: str
) -> None:
    r = render(renderer, alert(), kind=kind)
    assert r.subject.startswith("Product safety recall:")
    assert r.subject.endswith(suffix)


def test_withdrawal_tells_the_customer_they_are_not_affected_and_drops_the_instructions(
    renderer: NoticeRenderer,
) -> None:
    r = render(renderer, alert(), kind="withdrawal")
    assert "no longer affected" in r.text
    assert "Stop using this product now." not in r.text
    assert "Choose your remedy" not in r.text


@pytest.mark.parametrize("hostile", ["<script>alert(1)</script>", "<img src=x onerror=alert(1)>"])
def test_hostile_seller_text_is_escaped_in_html(renderer: NoticeRenderer, hostile: str) -> None:
    a = alert(
        title=f"Kettle {hostile}",
        hazard=f"Burns {hostile}",
        stop_using=f"Stop {hostile}",
        description=f"Desc {hostile}",
        contact=f"Call {hostile}",
    )
    r = render(renderer, a, name=f"Eve {hostile}")
    assert hostile not in r.html
    assert "<script" not in r.html
    assert "<img src=x" not in r.html
    assert "&lt;" in r.html  # escaped, not dropped
    # The plain-text part carries the text as written (it is not interpreted as markup).
    assert hostile in r.text


def test_title_cannot_inject_mail_headers(renderer: NoticeRenderer) -> None:
    a = alert(title="Kettle\r\nBcc: evil@x\r\nX-Injected: 1")
    r = render(renderer, a)
    assert "\r" not in r.subject and "\n" not in r.subject
    msg = build_message(
        r,
        to="buyer@example.test",
        name="Alex\r\nBcc: evil2@x",
        mail_from="Recalls <r@example.test>",
        message_id="<n-1@recall-alerts.notices>",
        notice_id="n-1",
    )
    assert msg["Bcc"] is None
    assert msg["X-Injected"] is None
    # Serialised and parsed back, there is still no Bcc and the subject is one line.
    parsed = email.message_from_bytes(msg.as_bytes(), policy=email.policy.default)
    assert parsed["Bcc"] is None and parsed["X-Injected"] is None
    assert "evil" not in str(parsed["To"]).split("<")[-1]  # the address is the customer's
    subject = str(parsed["Subject"])
    assert "\n" not in subject and "\r" not in subject
    assert subject.startswith("Product safety recall: Kettle")
    raw_headers = msg.as_bytes().split(b"\n\n", 1)[0]
    assert b"\nBcc:" not in raw_headers and b"\r\nBcc:" not in raw_headers


def test_header_safe_strips_control_characters_and_bounds_length() -> None:
    assert header_safe("a\r\nb\tc\x00d") == "a b c d"
    assert len(header_safe("x" * 500)) == 200


def test_stop_using_comes_before_the_hazard(renderer: NoticeRenderer) -> None:
    a = alert(stop_using="STOP-MARKER unplug now", hazard="HAZARD-MARKER burns")
    r = render(renderer, a)
    for body in (r.text, r.html):
        assert body.index("Stop using this product now.") < body.index("HAZARD-MARKER")
        assert body.index("STOP-MARKER") < body.index("HAZARD-MARKER")


def test_possibly_affected_notice_explains_how_to_check_the_label(renderer: NoticeRenderer) -> None:
    possibly = render(renderer, alert(tier="possibly_affected"))
    confirmed = render(renderer, alert(tier="confirmed"))
    phrase = "Check the label on your product"
    assert phrase in possibly.text and phrase in possibly.html
    assert phrase not in confirmed.text and phrase not in confirmed.html


def test_remedies_are_listed(renderer: NoticeRenderer) -> None:
    r = render(
        renderer,
        alert(remedies=("refund_with_return", "refund_on_destruction", "replacement", "repair")),
    )
    for label in (
        "A full refund of the price you paid, with a prepaid return label",
        "A full refund of the price you paid, on proof of destruction",
        "A free replacement",
        "A free repair",
    ):
        assert label in r.text and label in r.html
    only_repair = render(renderer, alert(remedies=("repair",)))
    assert "A free replacement" not in only_repair.text


def test_customers_own_order_lines_are_shown(renderer: NoticeRenderer) -> None:
    lines = [
        ev.AffectedLine(
            order_id="ord-A",
            line_id="l-1",
            product_id="prod-1",
            title="Kettle white",
            seller_id="s",
            purchased_at=datetime(2024, 11, 2, 9, 0, tzinfo=UTC),
            units=3,
            unit_price=Decimal("10"),
            currency="EUR",
            gtin="00012345678905",
        ),
        ev.AffectedLine(
            order_id="ord-B",
            line_id="l-2",
            product_id="prod-2",
            title="Kettle black",
            seller_id="s",
            purchased_at=datetime(2025, 1, 20, 9, 0, tzinfo=UTC),
            units=1,
            unit_price=Decimal("10"),
            currency="EUR",
            serial="SN-99",
        ),
    ]
    r = render(renderer, alert(lines=lines))
    for body in (r.text, r.html):
        assert "bought on 2 Nov 2024, 3 unit(s), order ord-A" in body
        assert "bought on 20 Jan 2025, 1 unit(s), order ord-B" in body
        assert "GTIN 00012345678905" in body and "Serial SN-99" in body
    de = render(renderer, alert(lines=lines), locale="de")
    assert "gekauft am 02.11.2024, 3 Stück, Bestellung ord-A" in de.text


def test_notice_links_to_the_alert_on_the_portal_and_names_the_contact(
    renderer: NoticeRenderer,
) -> None:
    r = render(renderer, alert())
    assert "https://shop.example/account/recalls/al-123" in r.text
    assert 'href="https://shop.example/account/recalls/al-123"' in r.html
    assert "recalls@acme.example" in r.text


def test_account_admin_gets_the_business_account_wording(renderer: NoticeRenderer) -> None:
    r = render(renderer, alert(), role="account_admin")
    assert "bought on your business account" in r.text


def test_build_message_has_both_parts_and_identifying_headers(renderer: NoticeRenderer) -> None:
    r = render(renderer, alert())
    msg = build_message(
        r,
        to="buyer@example.test",
        name="Alex Doe",
        mail_from="Recalls <r@example.test>",
        message_id="<n-1@recall-alerts.notices>",
        notice_id="n-1",
    )
    assert msg["Subject"] == r.subject
    assert msg["Message-ID"] == "<n-1@recall-alerts.notices>"
    assert msg["X-Recall-Notice-Id"] == "n-1"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert "buyer@example.test" in msg["To"] and "Alex Doe" in msg["To"]
    assert msg.get_body(preferencelist=("plain",)) is not None
    assert msg.get_body(preferencelist=("html",)) is not None


# --------------------------------------------------------------------------- content added for
# issue 5


def possibly_line(unknown: list[str]) -> ev.AffectedLine:
    return ev.AffectedLine(
        order_id="ord-9",
        line_id="l-9",
        product_id="prod-kettle",
        title="Kettle",
        seller_id="s",
        gtin="00012345678905",
        model_number="KX-1",
        purchased_at=datetime(2025, 5, 1, tzinfo=UTC),
        units=1,
        unit_price=Decimal("10"),
        currency="EUR",
        tier="possibly_affected",
        unknown_attributes=unknown,
    )


@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        ("en", "Check on the label: the lot number, the expiry date"),
        ("de", "Prüfen Sie auf dem Etikett: die Chargennummer, das Verfallsdatum"),
    ],
)
def test_possibly_affected_line_names_what_to_check(
    renderer: NoticeRenderer, locale: str, expected: str
) -> None:
    r = render(
        renderer,
        alert(tier="possibly_affected", lines=[possibly_line(["lot", "expiry date"])]),
        locale=locale,
    )
    assert expected in r.text and expected in r.html
    confirmed = render(renderer, alert(), locale=locale)
    assert expected.split(":")[0] not in confirmed.text


def test_unknown_attribute_names_are_escaped_and_kept_when_not_known(
    renderer: NoticeRenderer,
) -> None:
    r = render(
        renderer, alert(tier="possibly_affected", lines=[possibly_line(["serial", "<b>batch</b>"])])
    )
    assert "Check on the label: the serial number, &lt;b&gt;batch&lt;/b&gt;" in r.html
    assert "<b>batch" not in r.html


def _translated(**tr: object) -> ev.AlertState:
    base = alert(description="A 1.7 l electric kettle.")
    recall = base.recall.model_copy(
        update={
            "remedies": [
                ev.Remedy(type="replacement", instructions="Request a replacement online.")
            ],
            "texts": {"de": ev.LocalizedText(**tr)},
        }
    )
    return base.model_copy(update={"recall": recall})


def test_localized_recall_texts_are_used_for_the_customers_locale(renderer: NoticeRenderer) -> None:
    a = _translated(
        title="Acme Wasserkocher KX-1",
        hazard="Der Sockel kann überhitzen und Verbrennungen verursachen.",
        stop_using="Ziehen Sie den Stecker und benutzen Sie den Wasserkocher nicht mehr.",
        remedy_instructions={"replacement": "Fordern Sie online Ersatz an."},
    )
    de = render(renderer, a, locale="de-AT")
    assert de.subject == "Produktsicherheitsrückruf: Acme Wasserkocher KX-1"
    for body in (de.text, de.html):
        assert "Der Sockel kann überhitzen" in body
        assert "Ziehen Sie den Stecker" in body
        assert "Fordern Sie online Ersatz an." in body
        assert "A 1.7 l electric kettle." in body, (
            "an untranslated field falls back to the main text"
        )
        assert "The base can overheat" not in body
    en = render(renderer, a, locale="en")
    assert en.subject == "Product safety recall: Acme kettle KX-1"
    assert "The base can overheat" in en.text and "Request a replacement online." in en.text
    assert "Der Sockel" not in en.text


@pytest.mark.parametrize("hostile", ["<script>alert(1)</script>", "<img src=x onerror=alert(1)>"])
def test_hostile_translations_are_escaped_and_cannot_inject_headers(
    renderer: NoticeRenderer, hostile: str
) -> None:
    a = _translated(
        title=f"Kocher {hostile}\r\nBcc: evil@x",
        hazard=f"Gefahr {hostile}",
        stop_using=f"Stopp {hostile}",
        remedy_instructions={"replacement": f"Ersatz {hostile}"},
        consumer_contact=f"Tel {hostile}",
    )
    r = render(renderer, a, locale="de")
    assert hostile not in r.html and "<script" not in r.html and "<img src=x" not in r.html
    assert "\n" not in r.subject and "\r" not in r.subject
    msg = build_message(
        r,
        to="k@example.test",
        name="K",
        mail_from="R <r@example.test>",
        message_id="<m@x>",
        notice_id="n",
    )
    parsed = email.message_from_bytes(serialize_message(msg), policy=email.policy.default)
    assert parsed["Bcc"] is None


def test_subject_is_one_line_however_long_and_body_lines_stay_short(
    renderer: NoticeRenderer,
) -> None:
    title = "Acme Wasserkocher KX-1 mit außergewöhnlich langem Produktnamen " + "Edelstahl " * 8
    r = render(renderer, alert(title=title, hazard="Überhitzung " * 200), locale="de")
    msg = build_message(
        r,
        to="k@example.test",
        name="Jürgen Groß",
        mail_from="R <r@example.test>",
        message_id="<m@x>",
        notice_id="n",
    )
    raw = serialize_message(msg)
    head, body = raw.split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    (subject_line,) = [ln for ln in lines if ln.startswith(b"Subject:")]
    following = lines[lines.index(subject_line) + 1]
    assert not following[:1].isspace(), "the Subject header is not folded onto a continuation line"
    assert max(len(ln) for ln in body.split(b"\r\n")) <= 78, (
        "body lines within SMTP limits (quoted-printable)"
    )
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert str(parsed["Subject"]) == r.subject
    plain = parsed.get_body(preferencelist=("plain",))
    assert plain is not None
    assert plain.get_content().count("Überhitzung") == 200


def test_images_have_alt_text_and_only_web_urls(renderer: NoticeRenderer) -> None:
    a = alert()
    recall = a.recall.model_copy(
        update={
            "images": [
                "https://img.example/kettle.jpg",
                "javascript:alert(1)",
                'https://img.example/x.jpg" onerror="alert(1)',
            ]
        }
    )
    r = render(renderer, a.model_copy(update={"recall": recall}))
    assert (
        '<img src="https://img.example/kettle.jpg" alt="Photo of the recalled product: Acme kettle '
        'KX-1"' in r.html
    )
    assert "javascript:" not in r.html and "onerror" not in r.html
    assert "Photo: https://img.example/kettle.jpg" in r.text
    de = render(renderer, a.model_copy(update={"recall": recall}), locale="de")
    assert 'alt="Foto des zurückgerufenen Produkts: Acme kettle KX-1"' in de.html


def test_product_identifiers_are_shown_with_the_product(renderer: NoticeRenderer) -> None:
    r = render(renderer, alert())
    for body in (r.text, r.html):
        assert "Product identifiers: GTIN 00012345678905, Model KX-1" in body
        assert body.index("Product identifiers") < body.index("The hazard")
    assert (
        "Produktkennungen: GTIN 00012345678905, Modell KX-1"
        in render(renderer, alert(), locale="de").text
    )
