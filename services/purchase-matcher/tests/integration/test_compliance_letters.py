"""Letter-of-Compliance reinstatement over real Kafka and PostgreSQL: a recall of units made until
a day stops the sale of two sellers' listings; one seller's accepted letter (compliance_letters.v1:
its stock is made after that day) lifts that seller's stop-sale only, with the letter's id; an
amendment whose window covers that stock again declares it again. A letter by serial range lifts
a recall of serials, and withdrawn (compliance_letter.withdrawn.v1) the stop-sale is declared
again."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

import pytest

from recall_shared import events as ev
from recall_shared.testing import eventually
from recall_shared.topics import STOP_SALES

pytestmark = pytest.mark.integration


async def test_an_accepted_letter_lifts_that_sellers_stop_sale_while_the_scope_leaves_its_stock_out(
    matcher: Any, build: Any
) -> None:
    n = build.new_id
    kettle, a, b = n("p"), n("seller"), n("seller")
    await matcher.send(
        ev.ListingUpdated(
            product_id=kettle, title="Kettle", gtins=["00012345678905"], seller_ids=[a, b]
        )
    )
    await matcher.catalog_settled()
    recall_id = n("rc")
    rule = ev.ScopeRule(product_ids=[kettle], manufactured=ev.DateWindow(end=date(2025, 6, 30)))
    await matcher.send_and_settle(
        ev.RecallPublished(recall=build.snapshot(recall_id, rule, seller_id=None))
    )

    async def stop_sales_of(recall: str) -> list[ev.Event] | None:
        found = [e for _, e in await matcher.announced(STOP_SALES) if e.recall_id == recall]
        return found or None

    declared = await eventually(lambda: stop_sales_of(recall_id), timeout=20)
    assert {(type(e).__name__, e.seller_id) for e in declared} == {  # type: ignore[attr-defined]
        ("StopSaleDeclared", a),
        ("StopSaleDeclared", b),
    }

    letter_id = str(uuid.uuid4())
    await matcher.send(
        ev.ComplianceLetterAccepted(
            letter_id=letter_id,
            recall_id=recall_id,
            product_id=kettle,
            seller_id=a,
            made_after=date(2025, 7, 1),
            accepted_at=datetime.now(UTC),
        )
    )

    async def lifted() -> list[ev.StopSaleLifted] | None:
        events = await stop_sales_of(recall_id) or []
        found = [e for e in events if isinstance(e, ev.StopSaleLifted)]
        return found or None

    [lift] = await eventually(lifted, timeout=20)
    assert (lift.product_id, lift.seller_id) == (kettle, a)
    assert lift.reason == "out_of_scope" and lift.compliance_letter_id == letter_id

    # An amendment that reaches stock made later covers the letter's stock again: declared again.
    wider = ev.ScopeRule(product_ids=[kettle], manufactured=ev.DateWindow(end=date(2025, 12, 31)))
    await matcher.send_and_settle(
        ev.RecallAmended(recall=build.snapshot(recall_id, wider, version=2, seller_id=None))
    )

    async def declared_again() -> list[ev.StopSaleDeclared] | None:
        events = await stop_sales_of(recall_id) or []
        again = [e for e in events if isinstance(e, ev.StopSaleDeclared) and e.recall_version == 2]
        return again or None

    again = await eventually(declared_again, timeout=20)
    assert [e.seller_id for e in again] == [a]


async def test_a_letter_by_serials_lifts_the_stop_sale_and_its_withdrawal_declares_it_again(
    matcher: Any, build: Any
) -> None:
    n = build.new_id
    kettle, seller = n("p"), n("seller")
    await matcher.send(ev.ListingUpdated(product_id=kettle, title="Kettle", seller_ids=[seller]))
    await matcher.catalog_settled()
    recall_id = n("rc")
    serials = ev.CodeRule(ranges=[ev.CodeRange(first="SN1000", last="SN1999")])
    rule = ev.ScopeRule(product_ids=[kettle], serials=serials)
    await matcher.send_and_settle(
        ev.RecallPublished(recall=build.snapshot(recall_id, rule, seller_id=None))
    )

    async def announced(count: int) -> list[ev.Event] | None:
        found = [e for _, e in await matcher.announced(STOP_SALES) if e.recall_id == recall_id]
        return found if len(found) >= count else None

    await eventually(lambda: announced(1), timeout=20)
    letter = ev.ComplianceLetterAccepted(
        letter_id=str(uuid.uuid4()),
        recall_id=recall_id,
        product_id=kettle,
        seller_id=seller,
        serials=[ev.CodeRange(first="SN2000", last="SN2999")],
        accepted_at=datetime.now(UTC),
    )
    await matcher.send(letter)
    await eventually(lambda: announced(2), timeout=20)
    withdrawn = ev.ComplianceLetterWithdrawn(
        letter_id=letter.letter_id,
        recall_id=recall_id,
        product_id=kettle,
        seller_id=seller,
        reason="the serials were not as declared",
        withdrawn_at=datetime.now(UTC),
    )
    await matcher.send(withdrawn)
    events = await eventually(lambda: announced(3), timeout=20)
    assert [type(e).__name__ for e in events] == [
        "StopSaleDeclared",
        "StopSaleLifted",
        "StopSaleDeclared",
    ]
    assert events[1].compliance_letter_id == letter.letter_id  # type: ignore[attr-defined]
    assert events[2].seller_id == seller  # type: ignore[attr-defined]
