"""A postal letter is the notice on paper: read back from its PDF (pypdf), it holds the address
block, every legally required item the email has, in the customer's language, and the recall page
as text and as a QR code (decoded by zxing-cpp from the image in the page)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest
import zxingcpp
from pypdf import PdfReader

from notifier.letters import Letter, LetterNotice, LetterRenderer, manifest_csv, manifest_row
from recall_shared import events as ev

from .test_notice_items import EXPECTED, full_alert
from .test_render import PORTAL

ADDRESS = ev.PostalAddress(
    lines=["Hauptstraße 5", "Hinterhaus"], postal_code="10115", city="Berlin", country="DE"
)


def letter(locale: str, *notices: LetterNotice) -> Letter:
    return Letter(
        letter_id="letters-20261201T050000Z-000001",
        customer_id="c-1",
        name="Zofia Żółć",
        locale=locale,
        address=ADDRESS,
        notices=notices or (LetterNotice("n-1", full_alert(), "initial", "purchaser"),),
    )


def read(pdf: bytes) -> tuple[str, list[str]]:
    """The PDF's text (whitespace collapsed: lines wrap) and the payloads of its QR codes."""
    reader = PdfReader(io.BytesIO(pdf))
    text = " ".join(page.extract_text() for page in reader.pages)
    codes = [
        code.text
        for page in reader.pages
        for image in page.images
        for code in zxingcpp.read_barcodes(image.image)
    ]
    return " ".join(text.split()), codes


def flat(text: str) -> str:
    return " ".join(text.split())


def renderer() -> LetterRenderer:
    return LetterRenderer(portal_url=PORTAL, return_address="Shop, Returns, 10115 Berlin")


@pytest.mark.parametrize("lang", ["en", "de"])
def test_a_letter_states_what_the_email_states(lang: str) -> None:
    pdf, pages = renderer().pdf(letter(lang), date=datetime(2026, 12, 1, tzinfo=UTC))
    text, codes = read(pdf)
    page = f"{PORTAL.rstrip('/')}/recalls/al-1"
    assert codes == [page], "the recall page as a QR code"
    assert page in text, "and as text"
    for item, expected in EXPECTED[lang].items():
        assert flat(expected) in text, (item, expected)
    for line in ("Zofia Żółć", "Hauptstraße 5", "Hinterhaus", "10115 Berlin", "DE"):
        assert line in text, line
    assert pages >= 1
    why = {"en": "could not reach you by email", "de": "per E-Mail oder SMS nicht erreichen"}
    assert why[lang] in text


def test_one_letter_carries_every_notice_of_the_customer() -> None:
    second = full_alert().model_copy(update={"alert_id": "al-2"})
    pdf, pages = renderer().pdf(
        letter(
            "pl",
            LetterNotice("n-1", full_alert(), "initial", "purchaser"),
            LetterNotice("n-2", second, "update", "purchaser"),
        ),
        date=datetime(2026, 12, 1, tzinfo=UTC),
    )
    text, codes = read(pdf)
    assert codes == [f"{PORTAL.rstrip('/')}/recalls/al-1", f"{PORTAL.rstrip('/')}/recalls/al-2"]
    assert "Piszemy do Ciebie listownie" in text, "Polish, with its letters"
    assert pages >= 2


def test_the_manifest_lists_each_letter_and_disarms_formulas() -> None:
    hostile = letter("en").address.model_copy(update={"lines": ["=HYPERLINK(1)"]})
    row = manifest_row(
        Letter(
            "L1", "c-1", "Alex", "en", hostile, [LetterNotice("n-1", full_alert(), "initial", "")]
        ),
        file="L1.pdf",
        pages=2,
    )
    (read_back,) = csv.DictReader(io.StringIO(manifest_csv([row]).decode()))
    assert read_back["address_lines"] == "'=HYPERLINK(1)"
    assert (read_back["file"], read_back["pages"], read_back["notice_ids"]) == (
        "L1.pdf",
        "2",
        "n-1",
    )
    assert (read_back["postal_code"], read_back["city"], read_back["country"]) == (
        "10115",
        "Berlin",
        "DE",
    )
