"""Remedy notices (remedy_notices.py), free of I/O: which case transitions call for an email, and
what the label, refund and replacement emails say, in every language."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest

from notifier.remedy_notices import notice_for, render, status_event
from notifier.render import NoticeRenderer
from recall_shared import events as ev
from recall_shared.i18n import LOCALES

from .test_render import PORTAL, alert

LABEL = ev.ReturnLabelRef(
    tracking_number="SBX000000000042", label_url="https://carrier.example/l/42.pdf"
)


def transition(from_state: str | None, state: str, **kw: Any) -> ev.RemedyCaseTransitioned:
    return ev.RemedyCaseTransitioned(
        case_id="3b0f3c4e-8d7a-4b1e-9a55-2f6c1d0e9b71",
        request_id="3b0f3c4e-8d7a-4b1e-9a55-2f6c1d0e9b72",
        alert_id="al-123",
        customer_id="c-1",
        recall_id="rc-1",
        seller_id="s-1",
        remedy=kw.pop("remedy", "refund_with_return"),
        transition=kw.pop("transition", "step"),
        from_state=from_state,
        state=state,
        occurred_at=datetime(2026, 5, 4, tzinfo=UTC),
        **kw,
    )


def test_the_issued_label_calls_for_the_label_email_with_its_link_and_tracking() -> None:
    draft = notice_for(transition("requested", "label_issued", label=LABEL))
    assert draft is not None
    assert (draft.kind, draft.label_url, draft.tracking_number) == (
        "return_label",
        LABEL.label_url,
        LABEL.tracking_number,
    )
    assert (draft.case_id, draft.alert_id, draft.customer_id) == (
        "3b0f3c4e-8d7a-4b1e-9a55-2f6c1d0e9b71",
        "al-123",
        "c-1",
    )


def test_a_refund_calls_for_the_confirmation_with_its_amount() -> None:
    draft = notice_for(
        transition("item_received", "refunded", refunded_amount=Decimal("39.98"), currency="EUR")
    )
    assert draft is not None
    assert (draft.kind, draft.amount, draft.currency) == (
        "refund_confirmed",
        Decimal("39.98"),
        "EUR",
    )
    on_destruction = notice_for(
        transition("requested", "refunded", remedy="refund_on_destruction", currency="EUR")
    )
    assert on_destruction is not None and on_destruction.kind == "refund_confirmed"


def test_a_shipped_replacement_calls_for_the_dispatch_email() -> None:
    draft = notice_for(transition("requested", "replacement_shipped", remedy="replacement"))
    assert draft is not None and draft.kind == "replacement_shipped"


@pytest.mark.parametrize(
    ("from_state", "state", "extra"),
    [
        (None, "requested", {}),
        ("requested", "label_issued", {}),  # no label on the event: nothing to link to
        ("label_issued", "item_received", {}),
        ("refunded", "closed", {}),
        ("requested", "rejected", {}),
        ("requested", "referred_to_seller", {}),
        ("refunded", "refunded", {}),  # not a new refund
        ("requested", "repaired", {}),
    ],
)
def test_other_steps_send_nothing(from_state: str | None, state: str, extra: dict) -> None:
    assert notice_for(transition(from_state, state, **extra)) is None


def _detail(**kw: Any) -> dict[str, Any]:
    return {"label_url": None, "tracking_number": None, "amount": None, "currency": None, **kw}


@pytest.mark.parametrize("lang", LOCALES)
def test_each_remedy_email_is_written_in_the_customers_language(lang: str) -> None:
    renderer = NoticeRenderer(PORTAL)
    state = alert()
    label = render(
        renderer,
        state,
        _detail(label_url=LABEL.label_url, tracking_number=LABEL.tracking_number),
        kind="return_label",
        locale=lang,
        recipient_name="Alex",
    )
    refund = render(
        renderer,
        state,
        _detail(amount=119.9, currency="EUR"),  # jsonb gives a number
        kind="refund_confirmed",
        locale=lang,
        recipient_name="Alex",
    )
    shipped = render(
        renderer, state, _detail(), kind="replacement_shipped", locale=lang, recipient_name=""
    )
    subjects = {label.subject, refund.subject, shipped.subject}
    assert len(subjects) == 3 and all("Acme kettle KX-1" in s for s in subjects)
    assert LABEL.label_url in label.text and f'href="{LABEL.label_url}"' in label.html
    assert LABEL.tracking_number in label.text
    assert "119" in refund.text and ("€" in refund.text)
    assert f"{PORTAL.rstrip('/')}/recalls/al-123" in shipped.text
    if lang != "en":  # the words are the language's, not English
        assert "Download your return label" not in label.text
        assert "has been refunded" not in refund.text


def test_the_english_texts() -> None:
    renderer = NoticeRenderer(PORTAL)
    label = render(
        renderer,
        alert(),
        _detail(label_url=LABEL.label_url, tracking_number=LABEL.tracking_number),
        kind="return_label",
        locale="en",
        recipient_name="Alex",
    )
    assert label.subject == "Your prepaid return label: Acme kettle KX-1"
    assert f"Download your return label: {LABEL.label_url}" in label.text
    assert "Parcel tracking number: SBX000000000042" in label.text
    refund = render(
        renderer,
        alert(),
        _detail(amount="39.98", currency="EUR"),
        kind="refund_confirmed",
        locale="en",
        recipient_name="Alex",
    )
    assert "€39.98 has been refunded to your original payment method" in refund.text


def test_a_label_link_other_than_https_is_not_offered() -> None:
    rendered = render(
        NoticeRenderer(PORTAL),
        alert(),
        _detail(label_url="javascript:alert(1)", tracking_number="T1"),
        kind="return_label",
        locale="en",
        recipient_name="Alex",
    )
    assert "javascript:" not in rendered.html and "javascript:" not in rendered.text


def test_the_status_event_names_the_case_and_the_step() -> None:
    row = SimpleNamespace(
        notice_id="6a1f0c2e-1d3b-4c5a-9e7f-0b1c2d3e4f50",
        remedy_case_id="3b0f3c4e-8d7a-4b1e-9a55-2f6c1d0e9b71",
        alert_id="9c8b7a6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
        customer_id="c-1",
        kind="return_label",
        channel="email",
    )
    at = datetime(2026, 5, 4, tzinfo=UTC)
    event = status_event(
        row,
        recall_id="4d3c2b1a-0f9e-4d8c-b7a6-5e4d3c2b1a0f",
        status="bounced",
        at=at,
        bounce_type="hard",
        reason="5.1.1",
        source="dsn",
    )
    assert (event.case_id, event.kind, event.status, event.bounce_type, event.source) == (
        row.remedy_case_id,
        "return_label",
        "bounced",
        "hard",
        "dsn",
    )
    assert event.subject() == row.remedy_case_id
