"""The strings recall_shared renders itself, in English by key: the notice items of a recall
(``recall_shared.notice_view``), shown alike in the notices and on the pages. Translations are in
``locale/<lang>/LC_MESSAGES/messages.po`` (``make i18n``; ``recall_shared.i18n`` explains)."""

from __future__ import annotations

from recall_shared.i18n import msg, source

SOURCE = source(
    msg("brand", "Brand: {brand}"),
    msg("identifier_location", "Where to find the model, lot or serial number: {where}"),
    msg("identifier_location.image", "Where the model, lot or serial number is printed"),
    msg("units", "Units affected: {units}"),
    msg("sold", "Sold from {start} to {end}"),
    msg("sold.from", "Sold from {start}"),
    msg("sold.until", "Sold until {end}"),
    msg("sale_channels", "Where it was sold: {channels}"),
    msg("incidents", "Incidents and injuries: {incidents}"),
    msg("incidents.reported", "Incidents reported: {count}"),
    msg("injuries.reported", "Injuries reported: {count}"),
    msg("helpline.phone", "Free helpline: {phone}"),
    msg("helpline.url", "Online: {url}"),
    msg("references", "Official reference: {references}"),
    msg(
        "pass_it_on",
        "If you gave or sold this product to someone else, please pass this notice on to them.",
    ),
    msg("in_language", "(in {language}: no translation was provided)"),
    msg(
        "texts_fallback",
        "Some of this recall's texts are in {language}: the seller has not provided a translation.",
    ),
)
