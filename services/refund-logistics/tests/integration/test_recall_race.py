"""A remedy request and its recall committing at once (different partitions, slots or instances):
the case never waits for a recall that is known."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

import refund_logistics
from recall_shared import envelope
from recall_shared import events as ev
from recall_shared.outbox import Outbox
from recall_shared.testing import migrated_database
from refund_logistics.carrier import SandboxCarrier
from refund_logistics.handlers import Cases
from refund_logistics.models import Case
from refund_logistics.payments import SandboxPaymentProvider

pytestmark = [pytest.mark.integration]

MIGRATIONS = Path(refund_logistics.__file__).parent / "migrations"
T0 = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def recall_published(recall_id: str) -> ev.RecallPublished:
    return ev.RecallPublished(
        recall=ev.RecallSnapshot(
            recall_id=recall_id,
            version=1,
            seller_id="seller-1",
            content=ev.RecallContent(
                title="Acme kettle KX-1",
                hazard="Burns.",
                severity="high",
                stop_using="Unplug it.",
                remedies=[ev.Remedy(type="refund_on_destruction")],
                consumer_contact="recalls@acme.example",
            ),
            rules=[ev.ScopeRule(product_ids=["prod-kettle"])],
            published_at=T0,
            logistics_enrolled=True,
        )
    )


def alert_raised(alert_id: str, recall: ev.RecallPublished) -> ev.AlertRaised:
    return ev.AlertRaised(
        alert=ev.AlertState(
            alert_id=alert_id,
            alert_version=1,
            customer_id="cust-1",
            recall_id=recall.recall.recall_id,
            recall_version=1,
            seller_id="seller-1",
            tier="confirmed",
            lines=[
                ev.AffectedLine(
                    order_id="ord-1",
                    line_id="line-1",
                    product_id="prod-kettle",
                    seller_id="seller-1",
                    purchased_at=T0,
                    units=1,
                    unit_price=Decimal("19.99"),
                    currency="EUR",
                )
            ],
            recall=recall.recall.content,
        )
    )


async def test_a_recall_arriving_while_its_case_is_opened_is_never_missed() -> None:
    """The request's transaction finds no recall and leaves the case waiting for it; the recall's
    transaction runs meanwhile. Without the recall lock the recall sees no waiting case yet, the
    case commits as waiting, and nothing ever resumes it. With it, the recall waits for the case's
    commit, then resumes it."""
    async with migrated_database(MIGRATIONS, prefix="rls_race") as url:
        engine = create_async_engine(url)
        try:
            sf = async_sessionmaker(engine, expire_on_commit=False)
            cases = Cases(
                Outbox(source="/tests/refund-logistics", service="refund-logistics"),
                SandboxPaymentProvider(),
                Decimal("1.50"),
                carrier=SandboxCarrier(),
                session_factory=sf,
            )
            recall = recall_published(f"rc-{uuid.uuid4().hex[:8]}")
            alert_id = str(uuid.uuid4())
            raised = alert_raised(alert_id, recall)
            request = ev.RemedyRequested(
                request_id=str(uuid.uuid4()),
                alert_id=alert_id,
                customer_id="cust-1",
                recall_id=recall.recall.recall_id,
                remedy="refund_on_destruction",
                requested_at=T0,
            )
            wrap = envelope.wrap
            async with sf() as session, session.begin():
                await cases.on_alert(session, raised, wrap(raised, source="/tests"))

            async with sf() as first, first.begin():
                await cases.on_remedy_requested(first, request, wrap(request, source="/tests"))

                async def recall_arrives() -> None:
                    async with sf() as second, second.begin():
                        await cases.on_recall(second, recall, wrap(recall, source="/tests"))

                arriving = asyncio.create_task(recall_arrives())
                await asyncio.sleep(0.5)
                assert not arriving.done()  # it waits for the case's transaction
            await asyncio.wait_for(arriving, timeout=10)
            async with sf() as session:
                case = (
                    await session.execute(select(Case).where(Case.alert_id == alert_id))
                ).scalar_one()
            assert case.waiting_for == "proof", "the case goes on to ask for the photo"
        finally:
            await engine.dispose()
