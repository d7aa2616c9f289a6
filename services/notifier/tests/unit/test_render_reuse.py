"""What a notice's rendering makes once and reuses: a recall's parts per recall version and
language (the same for every customer it reaches), and encoded-word subjects built in one pass."""

from __future__ import annotations

import email.header
import email.quoprimime
import itertools

import pytest

from notifier import render as render_module
from notifier.render import NoticeRenderer, _encoded_words
from recall_shared import events as ev

from .test_render import PORTAL, alert


def customer(a: ev.AlertState, n: int) -> ev.AlertState:
    """The same recall reaching another customer: their own alert and order line."""
    line = a.lines[0].model_copy(update={"order_id": f"ord-{n}"})
    return a.model_copy(update={"alert_id": f"al-{n}", "customer_id": f"c-{n}", "lines": [line]})


def test_a_recalls_parts_are_made_once_for_every_customer_it_reaches(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made: list[str] = []
    localized = render_module.localized

    def counting(recall: ev.RecallContent, locale: str | None) -> render_module.LocalTexts:
        made.append(str(locale))
        return localized(recall, locale)

    monkeypatch.setattr(render_module, "localized", counting)
    renderer = NoticeRenderer(PORTAL)
    base = alert()
    notices = [
        renderer.render(
            customer(base, n),
            kind="initial",
            locale="en",
            recipient_name=f"Customer {n}",
            recipient_role="purchaser",
        )
        for n in range(3)
    ]
    assert made == ["en"], "the recall's texts were made once for the three customers"
    for n, notice in enumerate(notices):  # each customer's own parts are still their own
        assert f"Customer {n}" in notice.text
        assert f"ord-{n}" in notice.text
        assert f"/recalls/al-{n}" in notice.html
        assert "The base can overheat" in notice.text


def test_a_recall_with_other_content_under_the_same_version_is_rendered_afresh() -> None:
    renderer = NoticeRenderer(PORTAL)
    first = renderer.render(
        alert(hazard="The base can overheat."),
        kind="initial",
        locale="en",
        recipient_name="A",
        recipient_role="purchaser",
    )
    second = renderer.render(
        alert(hazard="The lid can come off."),  # same recall id and version, other text
        kind="initial",
        locale="en",
        recipient_name="A",
        recipient_role="purchaser",
    )
    assert "The base can overheat." in first.text
    assert "The lid can come off." in second.text
    assert "The base can overheat." not in second.text


@pytest.mark.parametrize(
    "subject",
    [
        "Rückruf: Acme Wasserkocher KX-1",
        "Rückruf " * 40,
        "安全警告: 电热水壶 " * 12,
        "Émoji 😀 " * 30,
        "ä",
    ],
)
def test_encoded_words_are_as_long_as_the_limit_allows_and_decode_to_the_subject(
    subject: str,
) -> None:
    words = _encoded_words(subject).replace("\r\n", "").split(" ")
    assert all(len(w) <= 75 for w in words)
    decoded = str(email.header.make_header(email.header.decode_header(" ".join(words))))
    assert decoded == subject
    chunks = [email.header.decode_header(w)[0][0].decode() for w in words]
    for chunk, following in itertools.pairwise(chunks):
        longer = email.quoprimime.header_encode((chunk + following[0]).encode(), "utf-8")
        assert len(longer) > 75, "a word is cut only where the next character would not fit"
