"""What refund-logistics knows of a notice (the ``notices`` read model of notifications.v1), and
what counts as reaching the customer.

A notice is ``sent`` (the relay accepted it) or ``failed``; afterwards the notifier reports it
``delivered``, ``bounced`` or ``complained`` about. The reports move the status forward only, as the
notifier's own state machine does: a bounce is final, a complaint proves delivery and wins.
"""

from __future__ import annotations

from typing import TypeAlias

from recall_shared import events as ev

# status a report sets -> the statuses it may replace
REPORTED_AFTER: dict[str, tuple[str, ...]] = {
    "delivered": ("sent",),
    "bounced": ("sent", "delivered"),
    "complained": ("sent", "delivered", "bounced"),
}

# A notice went out: by email (notification.sent.v1), by SMS (notification.sms_sent.v1) or by post
# (notification.letter_sent.v1: in a batch handed to the mail house; letters report nothing back).
SENT = (ev.NoticeSent, ev.NoticeSmsSent, ev.NoticeLetterSent)
AnyNotice: TypeAlias = ev.NoticeSent | ev.NoticeSmsSent | ev.NoticeLetterSent | ev.NoticeFailed

REPORTED: dict[type[ev.Event], str] = {
    ev.NoticeDelivered: "delivered",
    ev.NoticeBounced: "bounced",
    # A letter the mail house returned undeliverable: the post's bounce.
    ev.NoticeLetterReturned: "bounced",
    ev.NoticeComplained: "complained",
}

# "Notified" in the report and the CPSC export: delivered, or accepted by the relay with no bounce
# heard (a bounce can come days later; the customer then leaves the count). Never a bounced notice.
REACHED = ("sent", "delivered", "complained")
# Confirmed by the recipient's mail system or the provider.
CONFIRMED = ("delivered", "complained")
