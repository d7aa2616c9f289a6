"""The items a recall notice must state (EU GPSR Art. 36(2), US 16 CFR 1115.27), and which of them
a recall's content still lacks.

Every item is optional in the contract (recalls stored before an item existed stay valid), so
recall-intake reports what is missing rather than refusing it, and the notices and pages render
what is there. Identifiers come from the scope and the customer's own lines; the request to pass
the notice on is a sentence of the notice itself (``pass_it_on``).
"""

from __future__ import annotations

from typing import Literal, get_args

from recall_shared.events import RecallContent

NoticeItem = Literal[
    "brand",
    "product_description",
    "identifier_location",
    "units_affected",
    "sale_period",
    "sale_channels",
    "incidents",
    "hazard",
    "stop_using",
    "remedies",
    "helpline",
    "pass_it_on",
]

NOTICE_ITEMS: tuple[NoticeItem, ...] = get_args(NoticeItem)


def present(content: RecallContent) -> dict[NoticeItem, bool]:
    """Which of the items the content states."""
    return {
        "brand": bool(content.brand.strip()),
        "product_description": bool(content.product_description.strip()),
        "identifier_location": bool(
            content.identifier_location.strip() or content.identifier_location_image
        ),
        "units_affected": content.units_affected is not None,
        "sale_period": content.sold is not None,
        "sale_channels": bool(content.sale_channels),
        "incidents": bool(
            content.incidents.strip()
            or content.incidents_reported is not None
            or content.injuries_reported is not None
        ),
        "hazard": bool(content.hazard.strip()),
        "stop_using": bool(content.stop_using.strip()),
        "remedies": bool(content.remedies),
        "helpline": bool(content.helpline_phone.strip() or content.helpline_url),
        "pass_it_on": content.pass_it_on,
    }


def missing(content: RecallContent) -> list[NoticeItem]:
    """The items a notice of this content could not state, in the order of ``NOTICE_ITEMS``."""
    have = present(content)
    return [item for item in NOTICE_ITEMS if not have[item]]
