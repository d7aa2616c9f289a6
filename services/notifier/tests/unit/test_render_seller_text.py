"""Seller text cannot disguise a notice's subject, and seller images cannot track who opens it."""

from __future__ import annotations

import email
import email.policy

from notifier.render import NoticeRenderer, build_message, header_safe
from recall_shared import events as ev

PORTAL = "https://shop.example/account/"
RLO, PDF, RLM, LRI, PDI = "\u202e", "\u202c", "\u200f", "\u2066", "\u2069"


def _alert(title: str = "Acme kettle KX-1", images: list[str] | None = None) -> ev.AlertState:
    base = ev.AlertState.model_validate(
        {
            "alert_id": "al-1",
            "alert_version": 1,
            "customer_id": "c-1",
            "recall_id": "rc-1",
            "recall_version": 1,
            "seller_id": "s-1",
            "tier": "confirmed",
            "lines": [
                {
                    "order_id": "o-1",
                    "line_id": "l-1",
                    "product_id": "p-1",
                    "seller_id": "s-1",
                    "purchased_at": "2025-03-14T10:00:00+00:00",
                    "units": 1,
                    "unit_price": "19.99",
                    "currency": "EUR",
                }
            ],
            "recall": {
                "title": title,
                "hazard": "The base can overheat.",
                "severity": "high",
                "stop_using": "Unplug it.",
                "remedies": [{"type": "replacement"}],
            },
        }
    )
    # The contract takes any image URL (stored recalls, regulators' imports): the renderer decides.
    recall = base.recall.model_copy(update={"images": images or []})
    return base.model_copy(update={"recall": recall})


def _render(a: ev.AlertState):
    return NoticeRenderer(PORTAL).render(
        a, kind="initial", locale="en", recipient_name="Alex", recipient_role="purchaser"
    )


def test_bidi_controls_in_a_title_do_not_reach_the_subject() -> None:
    # "Kettle <RLO>gpj.exe" would show as "Kettle exe.jpg": the override is dropped, the text kept.
    r = _render(_alert(title=f"Kettle {RLO}gpj.exe{PDF} {LRI}x{PDI}{RLM}"))
    assert r.subject == "Product safety recall: Kettle gpj.exe x"
    sent = build_message(
        r,
        to="a@example.com",
        name="Alex",
        mail_from="r@shop.example",
        message_id="<m@x>",
        notice_id="n-1",
    )
    parsed = email.message_from_bytes(sent.as_bytes(), policy=email.policy.default)
    assert str(parsed["Subject"]) == "Product safety recall: Kettle gpj.exe x"


def test_header_safe_strips_every_bidi_control() -> None:
    controls = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
    assert header_safe(f"a{controls}b") == "ab"
    assert header_safe("שלום Kettle") == "שלום Kettle"  # right-to-left text itself is kept


def test_only_https_images_are_put_in_the_email() -> None:
    r = _render(
        _alert(
            images=[
                "http://tracker.example/open.gif?c=1",
                "HTTP://tracker.example/x.jpg",
                "//tracker.example/y.jpg",
                "data:image/gif;base64,R0lGODlhAQABAAAAACw=",
                "https://img.example/kettle.jpg",
            ]
        )
    )
    assert "tracker.example" not in r.html and "tracker.example" not in r.text
    assert "data:image" not in r.html
    assert 'src="https://img.example/kettle.jpg"' in r.html
