"""Gifts (issue 15): the purchaser of a gift line is asked to pass the notice on, and a recipient
the order gave a contact for is a recipient of the alert's notices, told of the gifts only."""

from __future__ import annotations

from notifier.domain import gift_recipients, plan_alert_events, recipients, reported_role
from notifier.render import NoticeRenderer
from recall_shared import events as ev

from .test_notice_items import full_alert
from .test_render import PORTAL

GIL = ev.GiftRecipient(name="Gil", email="Gil@example.test", locale="de")


def with_lines(*lines: ev.AffectedLine) -> ev.AlertState:
    return full_alert().model_copy(update={"lines": list(lines)})


def gift_line(line_id: str, recipient: ev.GiftRecipient | None = GIL) -> ev.AffectedLine:
    base = full_alert().lines[0]
    return base.model_copy(
        update={
            "line_id": line_id,
            "order_id": f"ord-{line_id}",
            "is_gift": True,
            "gift_recipient": recipient,
        }
    )


def test_a_gift_recipient_with_a_contact_is_a_recipient_once() -> None:
    kept = full_alert().lines[0]
    same_person = GIL.model_copy(update={"email": "gil@EXAMPLE.test".lower(), "name": "G."})
    alert = with_lines(kept, gift_line("g1"), gift_line("g2", same_person))
    gifts = gift_recipients(alert)
    assert len(gifts) == 1, "one person, however many gifts"
    (rid,) = gifts
    assert rid.startswith("gift-") and len(rid) <= 100
    assert recipients(alert) == [("purchaser", alert.customer_id), ("gift_recipient", rid)]
    assert gift_recipients(alert.model_copy(update={"alert_version": 2})) == gifts, "stable id"
    no_contact = with_lines(gift_line("g3", ev.GiftRecipient(name="Anon")))
    assert recipients(no_contact) == [("purchaser", no_contact.customer_id)]
    not_a_gift = with_lines(kept.model_copy(update={"gift_recipient": GIL}))
    assert gift_recipients(not_a_gift) == {}, "a recipient only for a gift"
    plan = plan_alert_events({}, [ev.AlertRaised(alert=alert)])
    assert [(n.role, n.recipient_customer_id) for n in plan.notices] == recipients(alert)


def test_a_gift_recipient_with_only_a_postal_address_is_one_by_that_address() -> None:
    home = ev.PostalAddress(
        lines=["Hauptstraße 5"], postal_code="10115", city="Berlin", country="DE"
    )
    by_post = ev.GiftRecipient(name="Gil", postal_address=home)
    same_home = by_post.model_copy(
        update={"postal_address": home.model_copy(update={"lines": ["HAUPTSTRASSE  5"]})}
    )
    elsewhere = by_post.model_copy(
        update={"postal_address": home.model_copy(update={"city": "Potsdam"})}
    )
    alert = with_lines(gift_line("g1", by_post), gift_line("g2", same_home))
    assert len(gift_recipients(alert)) == 1, "the same address, however it is spelt in case"
    two = with_lines(gift_line("g1", by_post), gift_line("g2", elsewhere))
    assert len(gift_recipients(two)) == 2, "two homes, two letters"
    with_email = with_lines(gift_line("g1", GIL.model_copy(update={"postal_address": home})))
    assert (
        gift_recipients(with_email).keys() == gift_recipients(with_lines(gift_line("g1"))).keys()
    ), "an address beside an email leaves the recipient's id as it was"


def test_the_purchaser_is_asked_to_pass_it_on_and_the_recipient_told_of_the_gift() -> None:
    kept = full_alert().lines[0].model_copy(update={"title": "The kettle they kept"})
    alert = with_lines(kept, gift_line("g1"))
    renderer = NoticeRenderer(PORTAL)
    buyer = renderer.render(
        alert, kind="initial", locale="en", recipient_name="Alex", recipient_role="purchaser"
    )
    ask = "You marked this purchase as a gift. Please pass this notice on"
    assert ask in buyer.text and ask in buyer.html
    plain = renderer.render(
        full_alert(), kind="initial", locale="en", recipient_name="A", recipient_role="purchaser"
    )
    assert ask not in plain.text, "no gift, no request"
    gil = renderer.render(
        alert, kind="initial", locale="de", recipient_name="Gil", recipient_role="gift_recipient"
    )
    assert gil.text.startswith("Guten Tag Gil,")
    assert "als Geschenk" not in gil.text, "the recipient is not asked to pass their own gift on"
    assert "geschenkt bekommen" in gil.text and "Die Käuferin oder der Käufer" in gil.text
    assert "The kettle they kept" not in gil.text, "told of the gifts only"
    assert "ord-g1" in gil.text


def test_a_gift_recipient_is_reported_on_the_purchasers_behalf() -> None:
    assert reported_role("gift_recipient") == {
        "recipient_role": "purchaser",
        "gift_recipient": True,
    }
    assert reported_role("account_admin") == {"recipient_role": "account_admin"}
