"""The pages' user-interface strings, English and German, and how a request's language is picked.

Seller-written texts (title, hazard, ...) are not here: they come from the recall, in
``RecallContent.texts[lang]`` when the seller translated them, else in the recall's main language.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

SUPPORTED = ("en", "de")
DEFAULT = "en"

STRINGS: dict[str, dict[str, str]] = {
    "en": {
        "site": "Marketplace",
        "skip": "Skip to main content",
        "nav": "Your account",
        "nav.orders": "Your Orders",
        "nav.recalls": "Your recalls",
        "nav.language": "Language",
        "signout": "Sign out",
        "orders.title": "Your Orders",
        "orders.note": "Demo page: the orders shown are the purchases named in your recalls.",
        "orders.empty": "You have no orders to show.",
        "orders.order": "Order {order}",
        "orders.placed": "Placed on {date}",
        "orders.line": "{units} × {price}",
        "orders.recalled": "Recall: see what to do",
        "banner.label": "Recall notice",
        "banner.heading.one": "Recall: 1 product you bought needs your attention",
        "banner.heading.many": "Recall: {count} products you bought need your attention",
        "banner.most_severe": "Most urgent:",
        "banner.all": "See all your recalls and product safety alerts",
        "recalls.title": "Your recalls and product safety alerts",
        "recalls.intro": "Products you bought that have been recalled or have a safety alert, and "
        "what to do.",
        "recalls.empty": "You have no recalls or product safety alerts.",
        "recalls.older": "Older alerts",
        "recalls.back": "All your recalls and product safety alerts",
        "kind.recall": "Recall",
        "kind.safety_alert": "Product safety alert",
        "severity": "Severity",
        "severity.critical": "Critical",
        "severity.high": "High",
        "severity.medium": "Medium",
        "severity.low": "Low",
        "stop_using": "Stop using this product",
        "hazard": "The hazard",
        "product": "The product",
        "images": "Photos of the recalled product",
        "image_alt": "Photo {n} of the recalled product: {title}",
        "your_purchase": "Your purchase",
        "line": "{title}: order {order}, bought on {date}, {units} unit(s)",
        "line.lot": "Lot {lot}",
        "line.serial": "Serial number {serial}",
        "tier.confirmed": "Your purchase is affected by this recall.",
        "tier.possibly_affected": "Your purchase may be affected.",
        "check_label": "We do not know the {what} of the unit we sent you. Check the label on your "
        "product against the recall details on this page. If your unit is not affected, tell us "
        "so.",
        "check_label.generic": "lot or serial number",
        "attr.lot": "lot number",
        "attr.serial": "serial number",
        "attr.manufactured_on": "date of manufacture",
        "attr.best_before": "best-before date",
        "attr.expires_on": "expiry date",
        "not_affected.reason": "What does your label say? (optional)",
        "not_affected.button": "My unit is not affected",
        "not_affected.done": "You told us your unit is not affected. Thank you.",
        "ack.button": "I have read this notice",
        "ack.done": "You confirmed that you have read this notice.",
        "remedy.heading": "What you can choose",
        "remedy.legend": "Choose your remedy",
        "remedy.submit": "Confirm my choice",
        "remedy.refund_with_return": "A full refund of the price you paid, with a prepaid return "
        "label",
        "remedy.refund_on_destruction": "A full refund of the price you paid, on proof of "
        "destruction",
        "remedy.replacement": "A free replacement",
        "remedy.repair": "A free repair",
        "remedy.none": "No remedy is offered for this alert. Follow the instructions above.",
        "progress.heading": "Your remedy",
        "progress.chosen": "You chose: {remedy}",
        "progress.status": "Status: {state}",
        "progress.steps": "Progress",
        "progress.done": "Done",
        "progress.current": "Current step",
        "progress.next": "Next",
        "progress.refunded": "{amount} has been refunded to your original payment method.",
        "progress.reason": "Reason: {reason}",
        "state.requested": "Requested",
        "state.referred_to_seller": "Passed to the seller",
        "state.label_issued": "Return label sent",
        "state.item_received": "Returned item received",
        "state.refunded": "Refunded",
        "state.replacement_shipped": "Replacement shipped",
        "state.repaired": "Repaired",
        "state.closed": "Completed",
        "state.rejected": "Declined",
        "status.withdrawn": "This alert was withdrawn: after a correction of the recall, your "
        "purchase is not affected.",
        "status.closed": "This recall has been closed.",
        "contact": "Questions",
        "done.remedy": "Your choice was recorded. We will keep you informed here and by email.",
        "done.acknowledge": "Thank you for confirming that you have read this notice.",
        "done.not_affected": "Thank you. We recorded that your unit is not affected.",
        "error.conflict": "This could not be done: the alert has changed or a remedy was already "
        "chosen.",
        "error.not_offered": "Please choose one of the remedies offered.",
        "error.choose": "Please choose a remedy first.",
        "notfound.title": "Alert not found",
        "notfound.text": "We could not find this alert in your account.",
        "forbidden.title": "This form has expired",
        "forbidden.text": "Please go back, reload the page and try again.",
        "signin.title": "Sign in to see your recalls",
        "signin.text": "Your recalls and product safety alerts are private. Sign in with your "
        "marketplace account, or open the link in the recall email we sent you.",
        "signin.expired": "Your session has expired or the sign-in link is no longer valid. Please "
        "sign in again.",
        "signin.signed_out": "You have signed out.",
        "signin.dev": "Development: sign in as a demo customer",
        "dev.title": "Sign in as a demo customer",
        "dev.text": "Development only. Each link signs you in with a token made with this "
        "service's secret.",
        "dev.other": "Another customer id",
        "dev.submit": "Sign in",
        "dev.rs256": "This service verifies RS256 tokens; demo tokens (HS256) will not be "
        "accepted.",
        "footer": "Safety notices are sent regardless of your marketing preferences.",
    },
    "de": {
        "site": "Marktplatz",
        "skip": "Zum Hauptinhalt springen",
        "nav": "Ihr Konto",
        "nav.orders": "Meine Bestellungen",
        "nav.recalls": "Meine Rückrufe",
        "nav.language": "Sprache",
        "signout": "Abmelden",
        "orders.title": "Meine Bestellungen",
        "orders.note": "Demoseite: Die gezeigten Bestellungen sind die in Ihren Rückrufen "
        "genannten Käufe.",
        "orders.empty": "Es gibt keine Bestellungen anzuzeigen.",
        "orders.order": "Bestellung {order}",
        "orders.placed": "Bestellt am {date}",
        "orders.line": "{units} × {price}",
        "orders.recalled": "Rückruf: So gehen Sie vor",
        "banner.label": "Rückrufhinweis",
        "banner.heading.one": "Rückruf: 1 von Ihnen gekauftes Produkt erfordert Ihre "
        "Aufmerksamkeit",
        "banner.heading.many": "Rückruf: {count} von Ihnen gekaufte Produkte erfordern Ihre "
        "Aufmerksamkeit",
        "banner.most_severe": "Am dringendsten:",
        "banner.all": "Alle Ihre Rückrufe und Produktsicherheitswarnungen",
        "recalls.title": "Ihre Rückrufe und Produktsicherheitswarnungen",
        "recalls.intro": "Von Ihnen gekaufte Produkte, die zurückgerufen wurden oder für die eine "
        "Sicherheitswarnung besteht, und was zu tun ist.",
        "recalls.empty": "Sie haben keine Rückrufe oder Produktsicherheitswarnungen.",
        "recalls.older": "Ältere Meldungen",
        "recalls.back": "Alle Ihre Rückrufe und Produktsicherheitswarnungen",
        "kind.recall": "Rückruf",
        "kind.safety_alert": "Produktsicherheitswarnung",
        "severity": "Schweregrad",
        "severity.critical": "Kritisch",
        "severity.high": "Hoch",
        "severity.medium": "Mittel",
        "severity.low": "Niedrig",
        "stop_using": "Verwenden Sie dieses Produkt nicht mehr",
        "hazard": "Die Gefahr",
        "product": "Das Produkt",
        "images": "Fotos des zurückgerufenen Produkts",
        "image_alt": "Foto {n} des zurückgerufenen Produkts: {title}",
        "your_purchase": "Ihr Kauf",
        "line": "{title}: Bestellung {order}, gekauft am {date}, {units} Stück",
        "line.lot": "Charge {lot}",
        "line.serial": "Seriennummer {serial}",
        "tier.confirmed": "Ihr Kauf ist von diesem Rückruf betroffen.",
        "tier.possibly_affected": "Ihr Kauf ist möglicherweise betroffen.",
        "check_label": "Wir wissen nicht, welche {what} Ihr Exemplar hat. Vergleichen Sie das "
        "Etikett Ihres Produkts mit den Angaben zu diesem Rückruf. Ist Ihr Exemplar nicht "
        "betroffen, teilen Sie es uns mit.",
        "check_label.generic": "Charge oder Seriennummer",
        "attr.lot": "Chargennummer",
        "attr.serial": "Seriennummer",
        "attr.manufactured_on": "Herstellungsdatum",
        "attr.best_before": "Mindesthaltbarkeitsdatum",
        "attr.expires_on": "Verfallsdatum",
        "not_affected.reason": "Was steht auf Ihrem Etikett? (optional)",
        "not_affected.button": "Mein Exemplar ist nicht betroffen",
        "not_affected.done": "Sie haben uns mitgeteilt, dass Ihr Exemplar nicht betroffen ist. "
        "Vielen Dank.",
        "ack.button": "Ich habe diesen Hinweis gelesen",
        "ack.done": "Sie haben bestätigt, dass Sie diesen Hinweis gelesen haben.",
        "remedy.heading": "Ihre Wahl",
        "remedy.legend": "Wählen Sie Ihre Abhilfe",
        "remedy.submit": "Auswahl bestätigen",
        "remedy.refund_with_return": "Volle Erstattung des gezahlten Preises, mit frankiertem "
        "Rücksendeetikett",
        "remedy.refund_on_destruction": "Volle Erstattung des gezahlten Preises gegen Nachweis der "
        "Vernichtung",
        "remedy.replacement": "Kostenloser Ersatz",
        "remedy.repair": "Kostenlose Reparatur",
        "remedy.none": "Für diese Meldung wird keine Abhilfe angeboten. Befolgen Sie die "
        "Anweisungen oben.",
        "progress.heading": "Ihre Abhilfe",
        "progress.chosen": "Ihre Wahl: {remedy}",
        "progress.status": "Stand: {state}",
        "progress.steps": "Fortschritt",
        "progress.done": "Erledigt",
        "progress.current": "Aktueller Schritt",
        "progress.next": "Als Nächstes",
        "progress.refunded": "{amount} wurden auf Ihr ursprüngliches Zahlungsmittel erstattet.",
        "progress.reason": "Grund: {reason}",
        "state.requested": "Angefordert",
        "state.referred_to_seller": "An den Verkäufer weitergegeben",
        "state.label_issued": "Rücksendeetikett versandt",
        "state.item_received": "Rücksendung erhalten",
        "state.refunded": "Erstattet",
        "state.replacement_shipped": "Ersatz versandt",
        "state.repaired": "Repariert",
        "state.closed": "Abgeschlossen",
        "state.rejected": "Abgelehnt",
        "status.withdrawn": "Diese Meldung wurde zurückgezogen: Nach einer Korrektur des Rückrufs "
        "ist Ihr Kauf nicht betroffen.",
        "status.closed": "Dieser Rückruf ist abgeschlossen.",
        "contact": "Fragen",
        "done.remedy": "Ihre Wahl wurde gespeichert. Wir halten Sie hier und per E-Mail auf dem "
        "Laufenden.",
        "done.acknowledge": "Danke für Ihre Bestätigung, dass Sie diesen Hinweis gelesen haben.",
        "done.not_affected": "Danke. Wir haben gespeichert, dass Ihr Exemplar nicht betroffen ist.",
        "error.conflict": "Das war nicht möglich: Die Meldung hat sich geändert oder eine Abhilfe "
        "wurde bereits gewählt.",
        "error.not_offered": "Bitte wählen Sie eine der angebotenen Abhilfen.",
        "error.choose": "Bitte wählen Sie zuerst eine Abhilfe.",
        "notfound.title": "Meldung nicht gefunden",
        "notfound.text": "Wir konnten diese Meldung in Ihrem Konto nicht finden.",
        "forbidden.title": "Dieses Formular ist abgelaufen",
        "forbidden.text": "Bitte gehen Sie zurück, laden Sie die Seite neu und versuchen Sie es "
        "noch einmal.",
        "signin.title": "Melden Sie sich an, um Ihre Rückrufe zu sehen",
        "signin.text": "Ihre Rückrufe und Produktsicherheitswarnungen sind privat. Melden Sie sich "
        "mit Ihrem Marktplatz-Konto an oder öffnen Sie den Link in der Rückruf-E-Mail, die wir "
        "Ihnen gesendet haben.",
        "signin.expired": "Ihre Sitzung ist abgelaufen oder der Anmeldelink ist nicht mehr gültig. "
        "Bitte melden Sie sich erneut an.",
        "signin.signed_out": "Sie haben sich abgemeldet.",
        "signin.dev": "Entwicklung: als Demokunde anmelden",
        "dev.title": "Als Demokunde anmelden",
        "dev.text": "Nur für die Entwicklung. Jeder Link meldet Sie mit einem Token an, das mit "
        "dem Schlüssel dieses Dienstes erstellt wird.",
        "dev.other": "Andere Kundennummer",
        "dev.submit": "Anmelden",
        "dev.rs256": "Dieser Dienst prüft RS256-Tokens; Demo-Tokens (HS256) werden nicht "
        "angenommen.",
        "footer": "Sicherheitsmitteilungen werden unabhängig von Ihren Werbeeinstellungen "
        "versandt.",
    },
}

LANGUAGE_NAMES = {"en": "English", "de": "Deutsch"}


def parse_accept_language(header: str | None) -> str | None:
    """The supported language the client prefers most (q-values honoured), or None."""
    if not header:
        return None
    prefs: list[tuple[float, int, str]] = []
    for i, part in enumerate(header.split(",")):
        piece = part.strip()
        if not piece:
            continue
        tag, _, params = piece.partition(";")
        q = 1.0
        for p in params.split(";"):
            k, _, v = p.strip().partition("=")
            if k == "q":
                try:
                    q = float(v)
                except ValueError:
                    q = 0.0
        primary = tag.strip().split("-")[0].split("_")[0].lower()
        if primary in SUPPORTED and q > 0:
            prefs.append((-q, i, primary))
    return min(prefs)[2] if prefs else None


def supported(lang: str | None) -> str | None:
    return lang if lang in SUPPORTED else None


def fmt_date(value: datetime, lang: str) -> str:
    if lang == "de":
        return value.strftime("%d.%m.%Y")
    return value.strftime("%d %b %Y").lstrip("0")


def fmt_money(amount: Decimal, currency: str | None, lang: str) -> str:
    text = f"{amount:,.2f}"
    if lang == "de":
        text = text.replace(",", "\0").replace(".", ",").replace("\0", ".")
    return f"{text} {currency}" if currency else text


# --------------------------------------------------------------------------- the remedy case
# The case page's strings (issue 14: proof upload, return label, timeline, what is still needed),
# kept together so that they move to the gettext catalogs in one piece; merged into STRINGS below.

CASE_STRINGS: dict[str, dict[str, str]] = {
    "en": {
        "done.proof": "Thank you. We received your photo.",
        "error.proof_missing": "Please choose a photo to upload.",
        "error.proof_too_large": "This photo is too large. Please send a smaller one.",
        "error.proof_type": "This file is not a photo. Please send a JPEG, PNG, GIF or WebP image.",
        "error.proof_small": "This photo is too small to see the product. Please send a larger "
        "one.",
        "error.proof_unreadable": "We could not open this photo. Please take another one.",
        "error.proof_conflict": "We already have a photo for this remedy, or we are checking it. "
        "If we asked you for a new one, please send a different photo.",
        "error.proof_not_ready": "Your request is still being set up. Please try again in a few "
        "minutes.",
        "error.proof_unavailable": "The upload is not available right now. Please try again later.",
        "needed.heading": "What we need from you:",
        "needed.proof": "A photo of the product, destroyed (for example with the cord cut off). "
        "Your refund follows once we have it.",
        "needed.proof_again": "A new photo of the product, destroyed: we could not accept the last "
        "one (see the reason above).",
        "needed.review": "Nothing. We are checking your photo.",
        "needed.label": "Nothing yet. We are preparing your return label.",
        "needed.item": "Print the return label, attach it to the parcel and send the product back.",
        "needed.payment": "Nothing. Your refund is being paid.",
        "needed.seller": "Nothing. The seller is preparing your remedy.",
        "needed.processing": "Nothing yet. We are processing your request.",
        "proof.label": "Photo of the destroyed product",
        "proof.hint": "A JPEG, PNG, GIF or WebP photo in which the product is clearly destroyed.",
        "proof.submit": "Send the photo",
        "label.download": "Download your return label",
        "label.tracking": "(parcel tracking number {tracking})",
        "timeline.heading": "What has happened",
        "timeline.open": "Remedy requested",
        "timeline.refer_to_seller": "Passed to the seller",
        "timeline.issue_label": "Return label issued",
        "timeline.receive_item": "Returned product received",
        "timeline.proof_under_review": "Photo received, being checked",
        "timeline.proof_accepted": "Photo accepted",
        "timeline.proof_rejected": "Photo not accepted",
        "timeline.issue_refund": "Refunded",
        "timeline.ship_replacement": "Replacement shipped",
        "timeline.repair": "Repaired",
        "timeline.close": "Completed",
        "timeline.reject": "Declined",
    },
    "de": {
        "done.proof": "Danke. Wir haben Ihr Foto erhalten.",
        "error.proof_missing": "Bitte wählen Sie ein Foto zum Hochladen aus.",
        "error.proof_too_large": "Dieses Foto ist zu groß. Bitte senden Sie ein kleineres.",
        "error.proof_type": "Diese Datei ist kein Foto. Bitte senden Sie ein JPEG-, PNG-, GIF- "
        "oder WebP-Bild.",
        "error.proof_small": "Auf diesem Foto ist das Produkt zu klein zu sehen. Bitte senden Sie "
        "ein größeres.",
        "error.proof_unreadable": "Wir konnten dieses Foto nicht öffnen. Bitte machen Sie ein "
        "neues.",
        "error.proof_conflict": "Wir haben bereits ein Foto für diese Abhilfe oder prüfen es "
        "gerade. Wenn wir Sie um ein neues gebeten haben, senden Sie bitte ein anderes Foto.",
        "error.proof_not_ready": "Ihre Anfrage wird noch angelegt. Bitte versuchen Sie es in ein "
        "paar Minuten noch einmal.",
        "error.proof_unavailable": "Das Hochladen ist gerade nicht möglich. Bitte versuchen Sie es "
        "später noch einmal.",
        "needed.heading": "Was wir von Ihnen brauchen:",
        "needed.proof": "Ein Foto des zerstörten Produkts (zum Beispiel mit abgeschnittenem "
        "Kabel). Danach erstatten wir den Kaufpreis.",
        "needed.proof_again": "Ein neues Foto des zerstörten Produkts: Das letzte konnten wir "
        "nicht annehmen (Grund siehe oben).",
        "needed.review": "Nichts. Wir prüfen Ihr Foto.",
        "needed.label": "Noch nichts. Wir erstellen Ihr Rücksendeetikett.",
        "needed.item": "Drucken Sie das Rücksendeetikett aus, kleben Sie es auf das Paket und "
        "senden Sie das Produkt zurück.",
        "needed.payment": "Nichts. Ihre Erstattung wird ausgezahlt.",
        "needed.seller": "Nichts. Der Verkäufer bereitet Ihre Abhilfe vor.",
        "needed.processing": "Noch nichts. Wir bearbeiten Ihre Anfrage.",
        "proof.label": "Foto des zerstörten Produkts",
        "proof.hint": "Ein JPEG-, PNG-, GIF- oder WebP-Foto, auf dem das Produkt deutlich zerstört "
        "ist.",
        "proof.submit": "Foto senden",
        "label.download": "Rücksendeetikett herunterladen",
        "label.tracking": "(Sendungsnummer {tracking})",
        "timeline.heading": "Bisheriger Verlauf",
        "timeline.open": "Abhilfe angefordert",
        "timeline.refer_to_seller": "An den Verkäufer weitergegeben",
        "timeline.issue_label": "Rücksendeetikett erstellt",
        "timeline.receive_item": "Rücksendung erhalten",
        "timeline.proof_under_review": "Foto erhalten, wird geprüft",
        "timeline.proof_accepted": "Foto angenommen",
        "timeline.proof_rejected": "Foto nicht angenommen",
        "timeline.issue_refund": "Erstattet",
        "timeline.ship_replacement": "Ersatz versandt",
        "timeline.repair": "Repariert",
        "timeline.close": "Abgeschlossen",
        "timeline.reject": "Abgelehnt",
    },
}
for _lang, _strings in CASE_STRINGS.items():
    STRINGS[_lang].update(_strings)
