"""Rendering a recall notice, free of I/O: subject, plain text and HTML, English and German.

The wording follows what regulators ask of a recall notice: the word "recall" in the subject, the
product and the customer's own purchase, the hazard without softening, "stop using" first, the
remedies, and a contact. Every seller-written value is escaped in HTML (autoescape) and stripped of
line breaks in headers. No marketing, ever.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, formatdate

from jinja2 import Environment, PackageLoader, StrictUndefined

from recall_shared import events as ev

SUPPORTED_LOCALES = ("en", "de")

STRINGS: dict[str, dict[str, str]] = {
    "en": {
        "subject.recall": "Product safety recall: {title}",
        "subject.safety_alert": "Product safety alert: {title}",
        "subject.update": " (updated)",
        "subject.withdrawal": " (your purchase is not affected)",
        "subject.reminder": " (reminder)",
        "greeting": "Dear {name},",
        "greeting.anonymous": "Dear customer,",
        "intro.recall": "A product you bought from us is being recalled because it is unsafe.",
        "intro.safety_alert": "A safety alert has been issued for a product you bought from us.",
        "intro.admin": "A product bought on your business account is being recalled because it is unsafe.",
        "intro.update": "The recall of a product you bought has changed. Here is what applies now.",
        "intro.reminder": "You have not yet told us what you want to do about this recalled product.",
        "withdrawal": "We told you earlier that a product you bought was affected by the recall \"{title}\". "
        "After a correction of the recall, your purchase is no longer affected. You do not need to do anything.",
        "stop_using": "Stop using this product now.",
        "hazard": "The hazard",
        "your_purchase": "Your purchase",
        "bought_on": "bought on {date}, {units} unit(s), order {order}",
        "identifiers": "Identifiers",
        "possibly": "We do not know the lot or serial number of the unit we sent you. "
        "Check the label on your product against the affected lots or serial numbers on your recalls page. "
        "If your unit is not affected, you can tell us there.",
        "remedies": "What you can choose",
        "remedy.refund_with_return": "A full refund of the price you paid, with a prepaid return label",
        "remedy.refund_on_destruction": "A full refund of the price you paid, on proof of destruction",
        "remedy.replacement": "A free replacement",
        "remedy.repair": "A free repair",
        "action": "Choose your remedy on your recalls page",
        "contact": "Questions",
        "footer": "You receive this notice because you bought this product. Safety notices are sent "
        "regardless of your marketing preferences.",
    },
    "de": {
        "subject.recall": "Produktsicherheitsrückruf: {title}",
        "subject.safety_alert": "Produktsicherheitswarnung: {title}",
        "subject.update": " (aktualisiert)",
        "subject.withdrawal": " (Ihr Kauf ist nicht betroffen)",
        "subject.reminder": " (Erinnerung)",
        "greeting": "Guten Tag {name},",
        "greeting.anonymous": "Guten Tag,",
        "intro.recall": "Ein Produkt, das Sie bei uns gekauft haben, wird zurückgerufen, weil es nicht sicher ist.",
        "intro.safety_alert": "Für ein Produkt, das Sie bei uns gekauft haben, wurde eine Sicherheitswarnung veröffentlicht.",
        "intro.admin": "Ein über Ihr Geschäftskonto gekauftes Produkt wird zurückgerufen, weil es nicht sicher ist.",
        "intro.update": "Der Rückruf eines von Ihnen gekauften Produkts hat sich geändert. Das gilt jetzt.",
        "intro.reminder": "Sie haben uns noch nicht mitgeteilt, was mit diesem zurückgerufenen Produkt geschehen soll.",
        "withdrawal": "Wir hatten Ihnen mitgeteilt, dass ein von Ihnen gekauftes Produkt vom Rückruf \"{title}\" "
        "betroffen ist. Nach einer Korrektur des Rückrufs ist Ihr Kauf nicht mehr betroffen. Sie müssen nichts tun.",
        "stop_using": "Verwenden Sie dieses Produkt ab sofort nicht mehr.",
        "hazard": "Die Gefahr",
        "your_purchase": "Ihr Kauf",
        "bought_on": "gekauft am {date}, {units} Stück, Bestellung {order}",
        "identifiers": "Kennungen",
        "possibly": "Wir wissen nicht, welche Charge oder Seriennummer Ihr Exemplar hat. Vergleichen Sie das "
        "Etikett Ihres Produkts mit den betroffenen Chargen oder Seriennummern auf Ihrer Rückrufseite. "
        "Ist Ihr Exemplar nicht betroffen, können Sie uns das dort mitteilen.",
        "remedies": "Ihre Wahl",
        "remedy.refund_with_return": "Volle Erstattung des gezahlten Preises, mit frankiertem Rücksendeetikett",
        "remedy.refund_on_destruction": "Volle Erstattung des gezahlten Preises gegen Nachweis der Vernichtung",
        "remedy.replacement": "Kostenloser Ersatz",
        "remedy.repair": "Kostenlose Reparatur",
        "action": "Wählen Sie Ihre Abhilfe auf Ihrer Rückrufseite",
        "contact": "Fragen",
        "footer": "Sie erhalten diese Mitteilung, weil Sie dieses Produkt gekauft haben. Sicherheitsmitteilungen "
        "werden unabhängig von Ihren Werbeeinstellungen versandt.",
    },
}

_HEADER_UNSAFE = re.compile(r"[\r\n\t\x00-\x1f\x7f]+")


def header_safe(value: str, limit: int = 200) -> str:
    """One line, no control characters: seller text cannot inject headers."""
    return _HEADER_UNSAFE.sub(" ", value).strip()[:limit]


def pick_locale(locale: str | None) -> str:
    lang = (locale or "en").split("-")[0].split("_")[0].lower()
    return lang if lang in SUPPORTED_LOCALES else "en"


@dataclass(frozen=True)
class RenderedNotice:
    subject: str
    text: str
    html: str


class NoticeRenderer:
    def __init__(self, portal_url: str) -> None:
        self.portal_url = portal_url.rstrip("/")
        self.html_env = Environment(
            loader=PackageLoader("notifier", "templates"),
            autoescape=True,  # every seller-written value is escaped
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.text_env = Environment(
            loader=PackageLoader("notifier", "templates"),
            autoescape=False,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )

    def subject(self, recall: ev.RecallContent, kind: ev.NoticeKind, locale: str) -> str:
        s = STRINGS[locale]
        base = s["subject.safety_alert" if recall.kind == "safety_alert" else "subject.recall"]
        suffix = {"update": s["subject.update"], "withdrawal": s["subject.withdrawal"], "reminder": s["subject.reminder"]}.get(kind, "")
        return header_safe(base.format(title=header_safe(recall.title, 150)) + suffix, 250)

    def render(
        self, alert: ev.AlertState, *, kind: ev.NoticeKind, locale: str | None, recipient_name: str,
        recipient_role: str,
    ) -> RenderedNotice:
        loc = pick_locale(locale)
        s = STRINGS[loc]
        recall = alert.recall
        if kind == "withdrawal":
            intro = ""
        elif kind == "update":
            intro = s["intro.update"]
        elif kind == "reminder":
            intro = s["intro.reminder"]
        elif recipient_role == "account_admin":
            intro = s["intro.admin"]
        else:
            intro = s["intro.safety_alert" if recall.kind == "safety_alert" else "intro.recall"]
        lines = [
            {
                "title": line.title or recall.title,
                "bought": s["bought_on"].format(
                    date=line.purchased_at.date().isoformat(), units=line.units, order=line.order_id
                ),
                "identifiers": ", ".join(
                    x for x in (line.product_id, f"GTIN {line.gtin}" if line.gtin else "",
                                f"Model {line.model_number}" if line.model_number else "",
                                f"Lot {line.lot}" if line.lot else "", f"Serial {line.serial}" if line.serial else "") if x
                ),
            }
            for line in alert.lines
        ]
        ctx = {
            "s": s,
            "kind": kind,
            "greeting": s["greeting"].format(name=recipient_name) if recipient_name else s["greeting.anonymous"],
            "intro": intro,
            "withdrawal": s["withdrawal"].format(title=recall.title),
            "recall": recall,
            "lines": lines,
            "possibly": alert.tier == "possibly_affected",
            "remedies": [{"label": s[f"remedy.{r.type}"], "instructions": r.instructions} for r in recall.remedies],
            "link": f"{self.portal_url}/recalls/{alert.alert_id}",
            "lang": loc,
        }
        return RenderedNotice(
            subject=self.subject(recall, kind, loc),
            text=self.text_env.get_template("notice.txt.j2").render(ctx),
            html=self.html_env.get_template("notice.html.j2").render(ctx),
        )


def build_message(rendered: RenderedNotice, *, to: str, name: str, mail_from: str, message_id: str, notice_id: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = mail_from
    msg["To"] = formataddr((header_safe(name, 100), to)) if name else to
    msg["Subject"] = rendered.subject
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = message_id
    msg["X-Recall-Notice-Id"] = notice_id
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(rendered.text)
    msg.add_alternative(rendered.html, subtype="html")
    return msg
