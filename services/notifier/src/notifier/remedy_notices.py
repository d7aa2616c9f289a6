"""Remedy notices (issue 14): the emails that carry a remedy to its end, sent from remedies.v1 when
a case issues its return label, is refunded, or ships its replacement.

They are ordinary rows in ``notices`` (kinds :data:`REMEDY_NOTICE_KINDS`), so they have every
guarantee of a recall notice: queued in the transaction that applies the case event (the inbox
drops a redelivery, and the notices' unique key a repeat of the transition), claimed exactly once by
the sender, re-sent when in doubt, with delivery states and bounce handling. What they tell beside
the alert (the label's link and tracking number, the amount refunded) is in ``remedy_notices``,
keyed by the notice. A remedy notice is keyed by (alert, kind, recipient) with alert version 0: a
customer has one remedy per alert (customer-api), so one case, so one notice of each kind.

The label is a **link**, not an attachment: it is the carrier's document at the carrier's address
(the same link the recalls page offers), so the email stays small and never carries a stale copy if
the label is re-issued, and the sender needs no fetch from the carrier on its path (a carrier
outage would otherwise hold up safety notices). A plain link also passes spam filters that score
PDF attachments from automated senders.

Their steps are announced as ``notification.remedy_notice.v1`` (:func:`status_event`), not as
``notification.sent.v1`` and its kin, whose ``kind`` is a recall notice's by contract. They go by
email only (no SMS fallback: a label is a document to print), and do not count as reach.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, get_args

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from notifier.models import RemedyNoticeDetail
from notifier.render import NoticeRenderer, RenderedNotice, catalogs, header_safe, localized
from recall_shared import events as ev
from recall_shared.i18n import format_money, pick_locale

REMEDY_NOTICE_KINDS: frozenset[str] = frozenset(get_args(ev.RemedyNoticeKind))
REMEDY_NOTICE_VERSION = 0  # the alert version in a remedy notice's key (see above)


# ---------------------------------------------------------------------------- decisions (no I/O)


@dataclass(frozen=True, slots=True)
class RemedyNoticeDraft:
    """A remedy notice to queue for a case's customer, and what it tells."""

    kind: ev.RemedyNoticeKind
    case_id: str
    alert_id: str
    customer_id: str
    remedy: str
    label_url: str | None = None
    tracking_number: str | None = None
    amount: Decimal | None = None
    currency: str | None = None


def notice_for(event: ev.RemedyCaseTransitioned) -> RemedyNoticeDraft | None:
    """The notice a case transition calls for: the label once it is issued, the confirmation once
    refunded, the dispatch once the replacement has shipped; nothing for the other steps."""
    case = (event.case_id, event.alert_id, event.customer_id, event.remedy)
    if event.state == "label_issued" and event.label is not None:
        return RemedyNoticeDraft(
            "return_label",
            *case,
            label_url=event.label.label_url,
            tracking_number=event.label.tracking_number,
        )
    if event.state == "refunded" and event.from_state != "refunded":
        return RemedyNoticeDraft(
            "refund_confirmed", *case, amount=event.refunded_amount, currency=event.currency
        )
    if event.state == "replacement_shipped" and event.from_state != "replacement_shipped":
        return RemedyNoticeDraft("replacement_shipped", *case)
    return None


def status_event(
    row: Any,
    *,
    recall_id: str,
    status: str,  # sent | failed | delivered | bounced | complained (ev.RemedyNoticeState)
    at: datetime,
    role: str | None = None,
    bounce_type: str | None = None,
    reason: str = "",
    source: ev.DeliverySource | None = None,
) -> ev.RemedyNoticeStatus:
    """The event of a remedy notice's step; ``row`` has the notice's columns and its case
    (``remedy_case_id``)."""
    return ev.RemedyNoticeStatus(
        notice_id=row.notice_id,
        case_id=row.remedy_case_id,
        alert_id=row.alert_id,
        customer_id=row.customer_id,
        recall_id=recall_id,
        kind=row.kind,
        channel=getattr(row, "channel", "email"),
        status=status,
        recipient_role=role,
        bounce_type=bounce_type,
        reason=reason[:2000],
        source=source,
        at=at,
    )


# ---------------------------------------------------------------------------- rendering


def render(
    renderer: NoticeRenderer,
    alert: ev.AlertState,
    detail: Mapping[str, Any] | None,
    *,
    kind: str,
    locale: str | None,
    recipient_name: str,
) -> RenderedNotice:
    """Subject, text and HTML of a remedy notice in the customer's language; ``detail`` is its
    ``remedy_notices`` row (as a mapping)."""
    loc = pick_locale(locale)
    s = catalogs().messages(loc)
    detail = detail or {}
    title = localized(alert.recall, locale or loc).title
    amount = detail.get("amount")
    label_url = str(detail.get("label_url") or "")
    ctx = {
        "s": s,
        "kind": kind,
        "lang": loc,
        "title": title,
        "greeting": s["greeting"].format(name=recipient_name)
        if recipient_name
        else s["greeting.anonymous"],
        "intro": s[f"remedy_notice.{kind}"].format(
            amount=format_money(Decimal(str(amount)), detail.get("currency"), loc)
            if amount is not None
            else "",
            title=title,
        ),
        # https only, like a notice's images: a link of another scheme is not offered.
        "label_url": label_url if label_url.lower().startswith("https://") else "",
        "tracking": s["remedy_notice.tracking"].format(tracking=detail["tracking_number"])
        if detail.get("tracking_number")
        else "",
        "link": f"{renderer.portal_url}/recalls/{alert.alert_id}",
        "contact": localized(alert.recall, locale or loc).consumer_contact,
    }
    subject = s[f"subject.{kind}"].format(title=header_safe(title, 150))
    return RenderedNotice(
        subject=header_safe(subject, 250),
        text=renderer.text_env.get_template("remedy_notice.txt.j2").render(ctx),
        html=renderer.html_env.get_template("remedy_notice.html.j2").render(ctx),
    )


# ---------------------------------------------------------------------------- the details' rows


async def store_details(session: AsyncSession, notice_id: str, draft: RemedyNoticeDraft) -> None:
    """What the notice tells, beside its row; a repeat keeps the first."""
    await session.execute(
        insert(RemedyNoticeDetail)
        .values(
            notice_id=notice_id,
            case_id=draft.case_id,
            remedy=draft.remedy,
            label_url=draft.label_url,
            tracking_number=draft.tracking_number,
            amount=draft.amount,
            currency=draft.currency,
        )
        .on_conflict_do_nothing()
    )
