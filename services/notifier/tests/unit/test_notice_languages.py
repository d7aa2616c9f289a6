"""Every notice language is complete, and a notice prints the dates and words of its language."""

from __future__ import annotations

import pytest

from notifier.render import NoticeRenderer, catalogs
from recall_shared.i18n import LOCALES

from .test_render import PORTAL, alert

TRANSLATED = [lang for lang in LOCALES if lang != "en"]


@pytest.mark.parametrize("lang", TRANSLATED)
def test_every_language_translates_every_string(lang: str) -> None:
    """A missing, empty, fuzzy or stale translation, or one with other placeholders, fails."""
    assert catalogs().missing(lang) == []
    assert catalogs().unused(lang) == []


@pytest.mark.parametrize(
    ("lang", "subject", "bought"),
    [
        ("en", "Product safety recall:", "bought on 14 Mar 2025"),
        ("de", "Produktsicherheitsrückruf:", "gekauft am 14.03.2025"),
        ("fr", "Rappel de produit pour raison de sécurité :", "acheté le 14 mars 2025"),
        ("es", "Retirada de producto por motivos de seguridad:", "comprado el 14 mar 2025"),
        ("it", "Richiamo di prodotto per motivi di sicurezza:", "acquistato il 14 mar 2025"),
        ("nl", "Terugroepactie wegens productveiligheid:", "gekocht op 14 mrt 2025"),
        ("pl", "Wycofanie produktu ze względów bezpieczeństwa:", "data zakupu: 14 mar 2025"),
    ],
)
def test_a_notice_is_written_in_its_language_with_its_dates(
    lang: str, subject: str, bought: str
) -> None:
    rendered = NoticeRenderer(PORTAL).render(
        alert(), kind="initial", locale=lang, recipient_name="Alex", recipient_role="purchaser"
    )
    assert rendered.subject.startswith(subject)
    assert bought in rendered.text and bought in rendered.html
    assert f'<html lang="{lang}">' in rendered.html
