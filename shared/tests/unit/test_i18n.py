"""recall_shared.i18n: which language a tag or header picks, and how strings are declared."""

from __future__ import annotations

from datetime import date

import pytest

from recall_shared.i18n import format_date, language, parse_accept_language, pick_locale, source


@pytest.mark.parametrize(
    ("tag", "want"),
    [("de-AT", "de"), ("pl_PL", "pl"), ("FR", "fr"), ("pt-BR", None), ("", None), (None, None)],
)
def test_language_of_a_tag(tag: str | None, want: str | None) -> None:
    assert language(tag) == want
    assert pick_locale(tag) == (want or "en")


def test_accept_language_prefers_the_highest_q_among_supported() -> None:
    assert parse_accept_language("pt-BR, it;q=0.4, es;q=0.6") == "es"
    assert parse_accept_language("ja, zh;q=0.9") is None


def test_a_key_declared_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="'a' is defined twice"):
        source(("a", "A"), ("a", "B"))


def test_dates_in_every_language() -> None:
    day = date(2026, 11, 21)
    assert [format_date(day, lang) for lang in ("en", "de", "fr", "es", "it", "nl", "pl")] == [
        "21 Nov 2026",
        "21.11.2026",
        "21 nov. 2026",
        "21 nov 2026",
        "21 nov 2026",
        "21 nov 2026",
        "21 lis 2026",
    ]
