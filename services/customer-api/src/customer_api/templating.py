"""The one Jinja environment of customer-api's pages, signed-in and public."""

from __future__ import annotations

from jinja2 import Environment, PackageLoader, StrictUndefined

TEMPLATES = Environment(
    loader=PackageLoader("customer_api", "templates"),
    # Every seller-written value is escaped; nothing is marked |safe (the public page's JSON-LD is
    # escaped for <script>).
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    auto_reload=False,  # templates ship with the code: no file check per page
)
