""" "Am I affected?" across two services, through real Kafka and PostgreSQL: a customer whose lot
order history does not know checks the label on customer-api; the confirmation goes to
purchase-matcher (remedies.v1), which owns the alert and raises it to confirmed on alerts.v1; the
customer's alert shows the new tier, and keeps it when the recall is amended.

Both services run in this process (their own composition roots, databases and consumer groups),
sharing one topic prefix: no fixed ports, so no stack lock."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI
from sqlalchemy import text

import customer_api
import purchase_matcher
from customer_api.app import create_app as customer_app
from customer_api.settings import Settings as CustomerSettings
from purchase_matcher.app import create_app as matcher_app
from purchase_matcher.domain import alert_id_for
from purchase_matcher.settings import Settings as MatcherSettings
from recall_shared import envelope
from recall_shared import events as ev
from recall_shared.auth import issue_customer_token
from recall_shared.testing import (
    eventually,
    fast_test_settings,
    migrated_database,
    own_topics,
    running_app,
    started_producer,
)

pytestmark = pytest.mark.integration


def _migrations(package: object) -> Path:
    return Path(package.__file__).parent / "migrations"  # type: ignore[attr-defined]


@dataclass
class TwoServices:
    customers: httpx.AsyncClient
    matcher: FastAPI
    producer: AIOKafkaProducer
    prefix: str
    jwt_secret: str

    async def publish(self, event: ev.Event) -> None:
        """As upstream (orders) or recall-intake (recalls) would."""
        env = envelope.wrap(event, source="/tests/upstream")
        await self.producer.send_and_wait(
            self.prefix + event.topic,
            value=env.data,
            key=event.partition_key().encode(),
            headers=env.headers(),
        )

    async def indexed(self, line_id: str) -> None:
        """Wait until purchase-matcher's purchase index holds the line. An order and a recall that
        arrive at the same instant can each miss the other (noted in issue 17's closing note);
        this test is about what follows."""

        async def check() -> bool | None:
            async with self.matcher.state.runtime.session_factory() as session:
                found = await session.scalar(
                    text("SELECT count(*) FROM purchase_lines WHERE line_id = :id"), {"id": line_id}
                )
            return found == 1 or None

        await eventually(check, timeout=60, interval=0.2)

    def auth(self, customer_id: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {issue_customer_token(customer_id, self.jwt_secret)}"}

    async def alert_when(self, customer_id: str, alert_id: str, **expect: object) -> dict:
        async def check() -> dict | None:
            r = await self.customers.get(
                f"/v1/me/alerts/{alert_id}", headers=self.auth(customer_id)
            )
            if r.status_code != 200:
                return None
            body = r.json()
            for k, v in expect.items():
                assert body.get(k) == v, f"{k}={body.get(k)!r}, want {v!r}"
            return body

        # New topics on a shared broker can take a while to elect their leaders.
        return await eventually(check, timeout=60, interval=0.2)


@contextlib.asynccontextmanager
async def two_services() -> AsyncIterator[TwoServices]:
    async with (
        own_topics() as prefix,
        migrated_database(_migrations(customer_api), "labels_custapi") as customers_db,
        migrated_database(_migrations(purchase_matcher), "labels_matcher") as matcher_db,
    ):
        common = fast_test_settings(topic_prefix=prefix)
        matcher = matcher_app(MatcherSettings(**common, database_url=matcher_db))
        customers = customer_app(
            CustomerSettings(
                **common,
                database_url=customers_db,
                refund_logistics_url="http://127.0.0.1:9",  # not needed here
            )
        )
        async with (
            running_app(matcher),
            running_app(customers) as client,
            started_producer(MatcherSettings(**common, database_url=matcher_db)) as producer,
        ):
            yield TwoServices(client, matcher, producer, prefix, str(common["jwt_secret"]))


async def test_a_confirming_label_upgrades_the_alert_in_every_service() -> None:
    run = datetime.now(UTC).strftime("%H%M%S%f")
    rid, kettle, alice = f"rc-{run}", f"kettle-{run}", f"alice-{run}"
    rule = ev.ScopeRule(
        product_ids=[kettle], lots=ev.CodeRule(ranges=[ev.CodeRange(first="L 100", last="L 199")])
    )
    content = ev.RecallContent(
        title="Acme kettle KX-1 recall",
        hazard="The base can overheat and cause burns.",
        severity="high",
        stop_using="Unplug the kettle and stop using it.",
        remedies=[ev.Remedy(type="refund_on_destruction")],
    )
    recall = ev.RecallSnapshot(
        recall_id=rid,
        version=1,
        seller_id="seller-1",
        content=content,
        rules=[rule],
        published_at=datetime.now(UTC),
    )
    order = ev.OrderPlaced(
        order_id=f"o-{run}",
        customer_id=alice,
        placed_at=datetime.now(UTC) - timedelta(days=20),
        lines=[
            ev.OrderLine(
                line_id=f"l-{run}",
                product_id=kettle,
                title="Kettle",
                seller_id="seller-1",
                quantity=1,
                unit_price=Decimal("29.99"),
                currency="EUR",
            )
        ],
    )
    async with two_services() as system:
        await system.publish(order)
        await system.indexed(order.lines[0].line_id)
        await system.publish(ev.RecallPublished(recall=recall))
        alert_id = alert_id_for(rid, alice)
        before = await system.alert_when(alice, alert_id, tier="possibly_affected")
        assert before["lines"][0]["unknown_attributes"] == ["lot"]

        async def checked() -> dict | None:
            r = await system.customers.post(
                f"/v1/me/alerts/{alert_id}/label-check",
                json={"lot": "l150"},
                headers=system.auth(alice),
            )
            assert r.status_code == 200, r.text
            # customer-api may not have the recall's scope from recalls.v1 yet
            return r.json() if r.json()["unknown"] != ["recall"] else None

        assert (await eventually(checked, timeout=30, interval=0.2))["answer"] == "confirmed"
        after = await system.alert_when(alice, alert_id, tier="confirmed")
        assert [(x["tier"], x["unknown_attributes"]) for x in after["lines"]] == [("confirmed", [])]

        amended = recall.model_copy(
            update={
                "version": 2,
                "content": content.model_copy(update={"title": "Acme kettle KX-1 (corrected)"}),
            }
        )
        await system.publish(ev.RecallAmended(recall=amended))
        await system.alert_when(
            alice, alert_id, title="Acme kettle KX-1 (corrected)", tier="confirmed"
        )
