"""A postal letter, free of I/O: one PDF per customer of a batch, with one notice per page run,
each with the alert's recall page as text and as a QR code; and the batch's manifest for the mail
house.

The letter says what the email says, in the customer's language: its text is the notice's own
plain text (``render.NoticeRenderer``: the strings of the gettext catalogs and the legally required
items of ``recall_shared.notice_view``), headed by the address block where a DIN 5008 window
envelope shows it, and a line saying why it came by post. The font (Roboto, from the font-roboto
package) covers the seven languages' letters; the QR code (segno) is a PNG image in the page.
"""

from __future__ import annotations

import csv
import functools
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import font_roboto
import segno
from fpdf import FPDF

from notifier.render import NoticeRenderer, catalogs, header_safe
from recall_shared import events as ev
from recall_shared.i18n import format_date, pick_locale
from recall_shared.validation import strip_bidi_controls

_FONT = "Roboto"
# DIN 5008 form B, window envelope DL: the address field starts 45 mm from the top, 20 mm from the
# left, 85 mm wide; the return address line sits just above it.
_WINDOW_X, _WINDOW_Y, _WINDOW_W = 20.0, 45.0, 85.0
_QR_SIZE = 32.0  # mm: readable by any phone camera at arm's length


@dataclass(frozen=True, slots=True)
class LetterNotice:
    notice_id: str
    alert: ev.AlertState
    kind: ev.NoticeKind
    recipient_role: str
    reminder_no: int = 0


@dataclass(frozen=True, slots=True)
class Letter:
    """The letter to one customer: every notice of theirs in the batch."""

    letter_id: str
    customer_id: str
    name: str
    locale: str | None
    address: ev.PostalAddress
    notices: Sequence[LetterNotice]

    @property
    def recipient(self) -> str:
        return self.address.recipient or self.name


def recall_page(portal_url: str, alert_id: str) -> str:
    """The alert's page, as the email links it (and the QR code holds)."""
    return f"{portal_url.rstrip('/')}/recalls/{alert_id}"


def address_lines(letter: Letter) -> list[str]:
    """The address block, as a mail house prints it (one line each, no control characters)."""
    a = letter.address
    city = " ".join(x for x in (a.postal_code, a.city) if x)
    lines = [letter.recipient, *a.lines, city, a.region, a.country]
    return [header_safe(x, 100) for x in lines if x and header_safe(x, 100)]


@functools.cache
def _qr_png(url: str) -> bytes:
    buf = io.BytesIO()
    segno.make(url, error="m", micro=False).save(buf, kind="png", scale=8, border=4)
    return buf.getvalue()


def _clean(text: str) -> str:
    """Text as the PDF takes it: no bidirectional controls (they could reorder what is read), no
    other control characters but line breaks."""
    text = strip_bidi_controls(text).replace("\r\n", "\n")
    return "".join(c for c in text if c == "\n" or c >= " " or c == "\t")


class LetterRenderer:
    def __init__(self, *, portal_url: str, return_address: str) -> None:
        self.portal_url = portal_url
        self.return_address = return_address
        self.notices = NoticeRenderer(portal_url)

    def pdf(self, letter: Letter, *, date: datetime) -> tuple[bytes, int]:
        """The letter's PDF and its number of pages."""
        loc = pick_locale(letter.locale)
        pdf = FPDF(format="A4", unit="mm")
        pdf.set_title(f"Recall notice {letter.letter_id}")
        pdf.set_creator("Recall Alerts notifier")
        pdf.add_font(_FONT, "", font_roboto.font_files["Roboto"])
        pdf.add_font(_FONT, "B", font_roboto.font_files["RobotoBold"])
        pdf.set_margins(20, 20, 20)
        pdf.set_auto_page_break(True, margin=20)
        for notice in letter.notices:
            self._notice_pages(pdf, letter, notice, loc, date)
        return bytes(pdf.output()), pdf.pages_count

    def _notice_pages(
        self,
        pdf: FPDF,
        letter: Letter,
        notice: LetterNotice,
        loc: str,
        date: datetime,
    ) -> None:
        strings = catalogs().messages(loc)
        rendered = self.notices.render(
            notice.alert,
            kind=notice.kind,
            locale=letter.locale,
            recipient_name=letter.name,
            recipient_role=notice.recipient_role,
            reminder_no=notice.reminder_no,
        )
        link = recall_page(self.portal_url, notice.alert.alert_id)
        pdf.add_page()
        pdf.set_font(_FONT, size=7)
        pdf.set_xy(_WINDOW_X, _WINDOW_Y - 5)
        pdf.cell(_WINDOW_W, 4, _clean(header_safe(self.return_address, 100)))
        pdf.set_font(_FONT, size=10)
        pdf.set_xy(_WINDOW_X, _WINDOW_Y)
        for line in address_lines(letter):
            pdf.set_x(_WINDOW_X)
            pdf.cell(_WINDOW_W, 5, _clean(line), new_x="LMARGIN", new_y="NEXT")
        # The QR code beside the address, the date under it.
        pdf.image(io.BytesIO(_qr_png(link)), x=210 - 20 - _QR_SIZE, y=_WINDOW_Y, w=_QR_SIZE)
        pdf.set_xy(20, 100)
        pdf.cell(0, 5, format_date(date, loc), align="R", new_x="LMARGIN", new_y="NEXT")
        pdf.ln(4)
        pdf.set_font(_FONT, "B", size=12)
        pdf.multi_cell(0, 6, _clean(rendered.subject), new_x="LMARGIN", new_y="NEXT")
        pdf.ln(2)
        pdf.set_font(_FONT, size=10)
        pdf.multi_cell(0, 5, _clean(strings["letter.why"]), new_x="LMARGIN", new_y="NEXT")
        pdf.multi_cell(
            0, 5, _clean(f"{strings['letter.scan']} {link}"), new_x="LMARGIN", new_y="NEXT"
        )
        pdf.ln(3)
        pdf.multi_cell(0, 5, _clean(rendered.text), new_x="LMARGIN", new_y="NEXT")


MANIFEST_FIELDS = (
    "letter_id",
    "file",
    "customer_id",
    "recipient",
    "address_lines",
    "postal_code",
    "city",
    "region",
    "country",
    "pages",
    "notice_ids",
)


def _cell(value: object) -> object:
    """A spreadsheet opening the manifest must not run a customer's text as a formula."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def manifest_csv(rows: Iterable[dict[str, object]]) -> bytes:
    """The batch's manifest for the mail house: one row per letter (CSV, UTF-8, a header row;
    address lines joined with " | ")."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=MANIFEST_FIELDS, lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(v) for k, v in row.items()})
    return buf.getvalue().encode("utf-8")


def manifest_row(letter: Letter, *, file: str, pages: int) -> dict[str, object]:
    a = letter.address
    return {
        "letter_id": letter.letter_id,
        "file": file,
        "customer_id": letter.customer_id,
        "recipient": header_safe(letter.recipient, 100),
        "address_lines": " | ".join(header_safe(x, 100) for x in a.lines),
        "postal_code": a.postal_code,
        "city": header_safe(a.city, 100),
        "region": header_safe(a.region, 100),
        "country": a.country,
        "pages": pages,
        "notice_ids": ";".join(n.notice_id for n in letter.notices),
    }
