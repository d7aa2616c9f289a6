"""The notices' strings in English, by key: the source of the gettext catalogs.

Translations are in ``locale/<lang>/LC_MESSAGES/messages.po`` (``make i18n`` extracts new strings
into them; ``recall_shared.i18n`` explains the scheme). Seller-written texts come from the recall.
"""

from __future__ import annotations

from recall_shared.i18n import msg, source

SOURCE = source(
    msg("subject.recall", "Product safety recall: {title}"),
    msg("subject.safety_alert", "Product safety alert: {title}"),
    msg("subject.update", " (updated)"),
    msg("subject.withdrawal", " (your purchase is not affected)"),
    msg("subject.reminder", " (reminder)"),
    msg("greeting", "Dear {name},"),
    msg("greeting.anonymous", "Dear customer,"),
    msg("intro.recall", "A product you bought from us is being recalled because it is unsafe."),
    msg("intro.safety_alert", "A safety alert has been issued for a product you bought from us."),
    msg(
        "intro.admin",
        "A product bought on your business account is being recalled because it is unsafe.",
    ),
    msg(
        "intro.update",
        "The recall of a product you bought has changed. Here is what applies now.",
    ),
    msg(
        "intro.reminder",
        "You have not yet told us what you want to do about this recalled product.",
    ),
    msg(
        "withdrawal",
        'We told you earlier that a product you bought was affected by the recall "{title}". '
        "After a correction of the recall, your purchase is no longer affected. You do not "
        "need to do anything.",
    ),
    msg("stop_using", "Stop using this product now."),
    msg("hazard", "The hazard"),
    msg("your_purchase", "Your purchase"),
    msg("bought_on", "bought on {date}, {units} unit(s), order {order}"),
    msg("identifiers", "Identifiers"),
    msg("product_identifiers", "Product identifiers"),
    msg("model", "Model"),
    msg("lot", "Lot {lot}"),
    msg("serial", "Serial {serial}"),
    msg("image_alt", "Photo of the recalled product: {title}"),
    msg("photo", "Photo"),
    msg("check", "Check on the label: {what}"),
    msg("attr.lot", "the lot number"),
    msg("attr.serial", "the serial number"),
    msg("attr.manufacture date", "the manufacturing date"),
    msg("attr.best-before date", "the best-before date"),
    msg("attr.expiry date", "the expiry date"),
    msg(
        "possibly",
        "We do not know every detail of the unit we sent you (see what to check above). Check"
        " the label on your product against the affected lots, serial numbers or dates on "
        "your recalls page. If your unit is not affected, you can tell us there.",
    ),
    msg("remedies", "What you can choose"),
    msg(
        "remedy.refund_with_return",
        "A full refund of the price you paid, with a prepaid return label",
    ),
    msg(
        "remedy.refund_on_destruction",
        "A full refund of the price you paid, on proof of destruction",
    ),
    msg("remedy.replacement", "A free replacement"),
    msg("remedy.repair", "A free repair"),
    msg("action", "Choose your remedy on your recalls page"),
    msg("contact", "Questions"),
    msg(
        "footer",
        "You receive this notice because you bought this product. Safety notices are sent "
        "regardless of your marketing preferences.",
    ),
    # Remedy reminders (issue 14): the customer chose a remedy that now waits for them
    # (remedy_reminders.reminder_reason names which).
    msg(
        "remedy_reminder.proof_missing",
        "You chose a refund on proof of destruction, and we have not received your photo of the "
        "destroyed product yet. Your refund is paid once we have it.",
    ),
    msg(
        "remedy_reminder.label_unused",
        "You chose a refund with return. Your prepaid return label is ready: please send the "
        "product back with it.",
    ),
    msg(
        "remedy_reminder.item_not_received",
        "You chose a refund with return, and the returned product has not reached us yet. Please "
        "send it back with your prepaid return label.",
    ),
    msg("remedy_reminder.action", "See what is still needed on your recalls page"),
    # A material amendment of a recall (issue 14, domain.material_changes).
    msg("subject.amendment", " (important change)"),
    msg(
        "intro.amendment",
        "The recall of a product you bought has changed in a way that matters for your safety. "
        "Please read what applies now.",
    ),
    # Remedy notices (issue 14, remedy_notices.py): a case's label, refund and replacement.
    msg("subject.return_label", "Your prepaid return label: {title}"),
    msg("subject.refund_confirmed", "Your refund has been paid: {title}"),
    msg("subject.replacement_shipped", "Your replacement is on its way: {title}"),
    msg(
        "remedy_notice.return_label",
        'Your prepaid return label for the recalled product "{title}" is ready. Print it, stick it '
        "on the parcel and hand the parcel to the carrier. We refund you once the product reaches "
        "us.",
    ),
    msg("remedy_notice.label_link", "Download your return label"),
    msg("remedy_notice.tracking", "Parcel tracking number: {tracking}"),
    msg(
        "remedy_notice.refund_confirmed",
        "{amount} has been refunded to your original payment method for the recalled product "
        '"{title}". Depending on your bank, it can take a few days to appear.',
    ),
    msg(
        "remedy_notice.replacement_shipped",
        'Your free replacement for the recalled product "{title}" has been sent to you.',
    ),
    msg("remedy_notice.action", "See your remedy on your recalls page"),
    msg(
        "remedy_notice.footer",
        "You receive this message because you chose a remedy for a recalled product.",
    ),
    # Reach (issue 15): letters, gifts, SMS texts.
    msg(
        "letter.why",
        "We are writing to you by post because we could not reach you by email or text message.",
    ),
    msg(
        "letter.scan",
        "Scan the code with your phone, or type this address, to see your recall page:",
    ),
    msg(
        "gift.pass_on",
        "You marked this purchase as a gift. Please pass this notice on to the person who has "
        "the product now, so that they can stop using it.",
    ),
    msg(
        "gift.recipient",
        "A product you received as a gift from a customer of ours is being recalled because it is "
        "unsafe. The buyer asked us to tell you.",
    ),
    msg("sms.recall", "Safety recall: {title}, which you bought from us. Stop using it now."),
    msg("sms.safety_alert", "Safety alert: {title}, which you bought from us. Stop using it now."),
    msg("sms.remedy", "Your remedy: {link}"),
    msg(
        "sms.withdrawal",
        "Recall correction: your purchase is not affected by the recall of {title}. Nothing to "
        "do. {link}",
    ),
)
