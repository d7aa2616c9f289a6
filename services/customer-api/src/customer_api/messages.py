"""The pages' interface strings in English, by key: the source of the gettext catalogs.

Translations are in ``locale/<lang>/LC_MESSAGES/messages.po`` (``make i18n`` extracts new strings
into them; ``recall_shared.i18n`` explains the scheme). Seller-written texts (title, hazard, ...)
are not here: they come from the recall.
"""

from __future__ import annotations

from recall_shared.i18n import msg, source

SOURCE = source(
    msg("site", "Marketplace"),
    msg("skip", "Skip to main content"),
    msg("nav", "Your account"),
    msg("nav.orders", "Your Orders"),
    msg("nav.recalls", "Your recalls"),
    msg("nav.language", "Language"),
    msg("signout", "Sign out"),
    msg("orders.title", "Your Orders"),
    msg("orders.note", "Demo page: the orders shown are the purchases named in your recalls."),
    msg("orders.empty", "You have no orders to show."),
    msg("orders.order", "Order {order}"),
    msg("orders.placed", "Placed on {date}"),
    msg("orders.line", "{units} × {price}"),
    msg("orders.recalled", "Recall: see what to do"),
    msg("banner.label", "Recall notice"),
    msg("banner.heading.one", "Recall: 1 product you bought needs your attention"),
    msg("banner.heading.many", "Recall: {count} products you bought need your attention"),
    msg("banner.most_severe", "Most urgent:"),
    msg("banner.all", "See all your recalls and product safety alerts"),
    msg("recalls.title", "Your recalls and product safety alerts"),
    msg(
        "recalls.intro",
        "Products you bought that have been recalled or have a safety alert, and what to do.",
    ),
    msg("recalls.empty", "You have no recalls or product safety alerts."),
    msg("recalls.older", "Older alerts"),
    msg("recalls.back", "All your recalls and product safety alerts"),
    msg("kind.recall", "Recall"),
    msg("kind.safety_alert", "Product safety alert"),
    msg("severity", "Severity"),
    msg("severity.critical", "Critical"),
    msg("severity.high", "High"),
    msg("severity.medium", "Medium"),
    msg("severity.low", "Low"),
    msg("stop_using", "Stop using this product"),
    msg("hazard", "The hazard"),
    msg("product", "The product"),
    msg("images", "Photos of the recalled product"),
    msg("image_alt", "Photo {n} of the recalled product: {title}"),
    msg("details", "About this recall"),
    msg("your_purchase", "Your purchase"),
    msg("line", "{title}: order {order}, bought on {date}, {units} unit(s)"),
    msg("line.lot", "Lot {lot}"),
    msg("line.serial", "Serial number {serial}"),
    msg("tier.confirmed", "Your purchase is affected by this recall."),
    msg("tier.possibly_affected", "Your purchase may be affected."),
    msg(
        "check_label",
        "We do not know the {what} of the unit we sent you. Check the label on your product "
        "against the recall details on this page. If your unit is not affected, tell us so.",
    ),
    msg("check_label.generic", "lot or serial number"),
    msg("attr.lot", "lot number"),
    msg("attr.serial", "serial number"),
    msg("attr.manufacture date", "date of manufacture"),
    msg("attr.best-before date", "best-before date"),
    msg("attr.expiry date", "expiry date"),
    msg("not_affected.reason", "What does your label say? (optional)"),
    msg("not_affected.button", "My unit is not affected"),
    msg("not_affected.done", "You told us your unit is not affected. Thank you."),
    msg("ack.button", "I have read this notice"),
    msg("ack.done", "You confirmed that you have read this notice."),
    msg(
        "viewed.note",
        "Opening this page tells us that our notice reached you, so we do not send it to you "
        "again another way, such as by text message or letter.",
    ),
    msg("remedy.heading", "What you can choose"),
    msg("remedy.legend", "Choose your remedy"),
    msg("remedy.submit", "Confirm my choice"),
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
    msg("remedy.none", "No remedy is offered for this alert. Follow the instructions above."),
    msg("progress.heading", "Your remedy"),
    msg("progress.chosen", "You chose: {remedy}"),
    msg("progress.status", "Status: {state}"),
    msg("progress.steps", "Progress"),
    msg("progress.done", "Done"),
    msg("progress.current", "Current step"),
    msg("progress.next", "Next"),
    msg("progress.refunded", "{amount} has been refunded to your original payment method."),
    msg("progress.reason", "Reason: {reason}"),
    msg("state.requested", "Requested"),
    msg("state.referred_to_seller", "Passed to the seller"),
    msg("state.label_issued", "Return label sent"),
    msg("state.item_received", "Returned item received"),
    msg("state.refunded", "Refunded"),
    msg("state.replacement_shipped", "Replacement shipped"),
    msg("state.repaired", "Repaired"),
    msg("state.closed", "Completed"),
    msg("state.rejected", "Declined"),
    msg(
        "status.withdrawn",
        "This alert was withdrawn: after a correction of the recall, your purchase is not "
        "affected.",
    ),
    msg("status.closed", "This recall has been closed."),
    # A closed alert whose recall was withdrawn (recall.closed.v1 with withdrawn), issue 17.
    msg(
        "status.recall_withdrawn",
        "This recall was withdrawn: it was issued in error, and the product is no longer recalled.",
    ),
    msg("contact", "Questions"),
    msg("done.remedy", "Your choice was recorded. We will keep you informed here and by email."),
    msg("done.acknowledge", "Thank you for confirming that you have read this notice."),
    msg("done.not_affected", "Thank you. We recorded that your unit is not affected."),
    msg(
        "error.conflict",
        "This could not be done: the alert has changed or a remedy was already chosen.",
    ),
    msg("error.not_offered", "Please choose one of the remedies offered."),
    msg("error.choose", "Please choose a remedy first."),
    msg("notfound.title", "Alert not found"),
    msg("notfound.text", "We could not find this alert in your account."),
    msg("forbidden.title", "This form has expired"),
    msg("forbidden.text", "Please go back, reload the page and try again."),
    msg("signin.title", "Sign in to see your recalls"),
    msg(
        "signin.text",
        "Your recalls and product safety alerts are private. Sign in with your marketplace "
        "account, or open the link in the recall email we sent you.",
    ),
    msg(
        "signin.expired",
        "Your session has expired or the sign-in link is no longer valid. Please sign in again.",
    ),
    msg("signin.signed_out", "You have signed out."),
    msg("signin.dev", "Development: sign in as a demo customer"),
    msg("dev.title", "Sign in as a demo customer"),
    msg(
        "dev.text",
        "Development only. Each link signs you in with a token made with this service's secret.",
    ),
    msg("dev.other", "Another customer id"),
    msg("dev.submit", "Sign in"),
    msg(
        "dev.rs256",
        "This service verifies RS256 tokens; demo tokens (HS256) will not be accepted.",
    ),
    msg("footer", "Safety notices are sent regardless of your marketing preferences."),
    # The public recall pages (public_pages.py): no sign-in.
    msg("public.title", "Product recalls"),
    msg(
        "public.intro",
        "Recalls and product safety alerts for products sold on this marketplace. Anyone may read "
        "them: you do not need an account.",
    ),
    msg("public.empty", "There are no published recalls."),
    msg("public.feed", "Follow new recalls (Atom feed)"),
    msg("public.back", "All product recalls"),
    msg("public.status.closed", "Closed"),
    msg(
        "public.closed_note",
        "This recall has been closed. If you still have the product, follow the instructions "
        "below.",
    ),
    # Withdrawn recalls (recall.closed.v1 with withdrawn): issued in error, no longer recalled.
    msg("public.status.withdrawn", "Withdrawn"),
    msg(
        "public.withdrawn_note",
        "This recall was withdrawn on {date}: the product is no longer recalled. What the "
        "recall said about the product is kept below for reference.",
    ),
    msg("public.close_reason", "Reason given: {reason}"),
    msg("public.published", "Published on {date}"),
    msg("public.updated", "updated on {date}"),
    msg("public.identifiers", "How to recognise the recalled product:"),
    msg("public.gtin", "Barcode (GTIN) {gtin}"),
    msg("public.model", "Model {model}"),
    msg("public.lots", "Lot numbers: {codes}"),
    msg("public.serials", "Serial numbers: {codes}"),
    msg("public.range", "{first} to {last}"),
    msg("public.prefix", "beginning with {prefix}"),
    msg("public.remedies", "What you can get"),
    msg(
        "public.own",
        "Bought it from us? Sign in to see your purchase and choose your remedy:",
    ),
    msg("public.missing.title", "Recall not found"),
    msg("public.missing.text", "There is no published recall at this address."),
    # "Am I affected?" on the public recall page.
    msg("check.heading", "Am I affected?"),
    msg(
        "check.intro",
        "Type what the label of your product says. We compare it with this recall as we do for "
        "the purchases of our customers.",
    ),
    msg("check.gtin", "Barcode number (GTIN, EAN or UPC)"),
    msg("check.lot", "Lot or batch number"),
    msg("check.serial", "Serial number"),
    msg("check.manufactured_on", "Date of manufacture"),
    msg("check.best_before", "Best before date"),
    msg("check.expires_on", "Expiry date (use by)"),
    msg(
        "check.bad_date",
        "This is not a date. Please give it as year-month-day, for example 2026-10-22.",
    ),
    msg("check.submit", "Check"),
    msg(
        "check.confirmed",
        "Your product is affected by this recall. Stop using it and follow the instructions on "
        "this page.",
    ),
    msg("check.not_affected", "By what you typed, your product is not affected by this recall."),
    msg("check.cannot_tell", "We cannot tell from this. Please also give: {what}."),
    msg("attr.product", "the barcode number of the product"),
    msg("attr.seller", "where you bought it (sign in if you bought it from us)"),
    msg("attr.purchase date", "when you bought it (sign in if you bought it from us)"),
    # "Am I affected?" on the alert page (label_checks).
    msg(
        "label_check.intro",
        "Type what your product's label says: we check it against this recall.",
    ),
    msg("error.label_date", "One of the dates you typed is not a date. Please correct it below."),
    msg(
        "done.label_confirmed",
        "Your unit is affected by this recall. Stop using it and choose your remedy below.",
    ),
    msg(
        "done.label_not_affected",
        "Your unit is not affected. We recorded what you typed. Thank you.",
    ),
    msg(
        "done.label_cannot_tell",
        "We cannot tell from what you typed. Check the number on the label again, or contact us.",
    ),
    # The remedy case (issue 14): proof upload, return label, timeline, what is still needed.
    msg("done.proof", "Thank you. We received your photo."),
    msg("error.proof_missing", "Please choose a photo to upload."),
    msg("error.proof_too_large", "This photo is too large. Please send a smaller one."),
    msg(
        "error.proof_type", "This file is not a photo. Please send a JPEG, PNG, GIF or WebP image."
    ),
    msg(
        "error.proof_small", "This photo is too small to see the product. Please send a larger one."
    ),
    msg("error.proof_unreadable", "We could not open this photo. Please take another one."),
    msg(
        "error.proof_conflict",
        "We already have a photo for this remedy, or we are checking it. If we asked you for a "
        "new one, please send a different photo.",
    ),
    msg(
        "error.proof_not_ready",
        "Your request is still being set up. Please try again in a few minutes.",
    ),
    msg(
        "error.proof_unavailable", "The upload is not available right now. Please try again later."
    ),
    msg("needed.heading", "What we need from you:"),
    msg(
        "needed.proof",
        "A photo of the product, destroyed (for example with the cord cut off). Your refund "
        "follows once we have it.",
    ),
    msg(
        "needed.proof_again",
        "A new photo of the product, destroyed: we could not accept the last one (see the reason "
        "above).",
    ),
    msg("needed.review", "Nothing. We are checking your photo."),
    msg("needed.label", "Nothing yet. We are preparing your return label."),
    msg(
        "needed.item", "Print the return label, attach it to the parcel and send the product back."
    ),
    msg("needed.payment", "Nothing. Your refund is being paid."),
    msg("needed.seller", "Nothing. The seller is preparing your remedy."),
    msg("needed.processing", "Nothing yet. We are processing your request."),
    msg("proof.label", "Photo of the destroyed product"),
    msg("proof.hint", "A JPEG, PNG, GIF or WebP photo in which the product is clearly destroyed."),
    msg("proof.submit", "Send the photo"),
    msg("label.download", "Download your return label"),
    msg("label.tracking", "(parcel tracking number {tracking})"),
    msg("timeline.heading", "What has happened"),
    msg("timeline.open", "Remedy requested"),
    msg("timeline.refer_to_seller", "Passed to the seller"),
    msg("timeline.issue_label", "Return label issued"),
    msg("timeline.receive_item", "Returned product received"),
    msg("timeline.proof_under_review", "Photo received, being checked"),
    msg("timeline.proof_accepted", "Photo accepted"),
    msg("timeline.proof_rejected", "Photo not accepted"),
    msg("timeline.issue_refund", "Refunded"),
    msg("timeline.ship_replacement", "Replacement shipped"),
    msg("timeline.repair", "Repaired"),
    msg("timeline.close", "Completed"),
    msg("timeline.reject", "Declined"),
)
