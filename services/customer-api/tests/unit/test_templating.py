"""The pages' templates are loaded once: no file check per page (auto_reload off), one cached
template object however often it renders; every value escaped."""

from __future__ import annotations

from customer_api.templating import TEMPLATES


def test_templates_load_once_and_escape() -> None:
    assert TEMPLATES.auto_reload is False
    names = [n for n in TEMPLATES.list_templates() if n.endswith(".html.j2")]
    assert names
    assert TEMPLATES.get_template(names[0]) is TEMPLATES.get_template(names[0])
    assert TEMPLATES.from_string("{{ x }}").render(x="<b>") == "&lt;b&gt;"
