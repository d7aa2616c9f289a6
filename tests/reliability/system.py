"""The running system under test and what the reliability tests do with it: feed it upstream events
and a recall, and read back what every service applied, its readiness, metrics and dead letters."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
import httpx
import orjson
from devstack import SERVICES, Stack  # tests/conftest.py: deploy/
from private_infra import PrivateKafka, PrivatePostgres, PrivateSmtp

from recall_shared import events as ev
from recall_shared.envelope import wrap
from recall_shared.kafka import create_client_producer
from recall_shared.testing import eventually, read_to_end
from recall_shared.topics import dead_letter_topic

SERVICE_NAMES = tuple(s.name for s in SERVICES)


@dataclass
class Cohort:
    """Customers who all bought one product, and the recall of that product."""

    run: str
    product_id: str
    customer_ids: list[str]
    seller_id: str
    recall_id: str = ""

    @property
    def size(self) -> int:
        return len(self.customer_ids)

    def email(self, customer_id: str) -> str:
        return f"{customer_id}@example.test"

    def contacts(self) -> list[ev.Event]:
        return [
            ev.CustomerUpdated(customer_id=c, name=c, email=self.email(c), locale="en")
            for c in self.customer_ids
        ]

    def orders(self) -> list[ev.Event]:
        placed = datetime.now(UTC) - timedelta(days=3)
        return [
            ev.OrderPlaced(
                order_id=f"o-{c}",
                customer_id=c,
                placed_at=placed,
                lines=[
                    ev.OrderLine(
                        line_id=f"l-{c}",
                        product_id=self.product_id,
                        title="Kettle",
                        seller_id=self.seller_id,
                        quantity=1,
                        unit_price=Decimal("19.95"),
                        currency="EUR",
                    )
                ],
            )
            for c in self.customer_ids
        ]


@dataclass
class System:
    stack: Stack
    postgres: PrivatePostgres
    kafka: PrivateKafka
    smtp: PrivateSmtp
    databases: dict[str, str]  # service name -> database name
    seller_id: str
    seller_key: str = ""
    max_attempts: int = 3
    _producer: object = field(default=None, repr=False)

    @property
    def prefix(self) -> str:
        return self.stack.env["RECALL_ALERTS_TOPIC_PREFIX"]

    # ------------------------------------------------------------------ feeding it

    async def publish(self, events: list[ev.Event], *, per_second: float | None = None) -> None:
        """Send upstream events (as the order, catalog and accounts systems would), acknowledged."""
        producer = create_client_producer(self.kafka.bootstrap, "reliability-upstream")
        await producer.start()
        try:
            pending = []
            for i, event in enumerate(events):
                env = wrap(event, source="/tests/reliability/upstream")
                pending.append(
                    await producer.send(
                        self.prefix + event.topic,
                        env.data,
                        key=event.partition_key().encode(),
                        headers=env.headers(),
                    )
                )
                if per_second and i % 50 == 49:
                    await asyncio.sleep(50 / per_second)
            await asyncio.gather(*pending)
        finally:
            await producer.stop()

    def cohort(self, size: int) -> Cohort:
        run = uuid.uuid4().hex[:8]
        return Cohort(
            run=run,
            product_id=f"kettle-{run}",
            customer_ids=[f"c{run}-{i:05d}" for i in range(size)],
            seller_id=self.seller_id,
        )

    async def contacts_known(self, cohort: Cohort) -> None:
        """Publish the cohort's contacts and wait until the notifier holds them all.

        Tests that are about the consumer runner start from here: while a contact and an alert for
        the same customer are applied at the same moment (customers.v1 and alerts.v1 are worked in
        parallel), the notifier can leave the notice waiting for a contact it already has."""
        await self.publish(cohort.contacts())

        async def known() -> bool:
            n = await self.scalar(
                "notifier",
                "SELECT count(*) FROM contacts WHERE customer_id = ANY($1)",
                cohort.customer_ids,
            )
            return n == cohort.size

        await eventually(known, timeout=60, interval=0.5)

    async def publish_recall(self, cohort: Cohort) -> str:
        """The seller creates and publishes the cohort's recall at recall-intake; returns its id."""
        await self.publish(
            [
                ev.ListingUpdated(
                    product_id=cohort.product_id, title="Kettle", seller_ids=[cohort.seller_id]
                )
            ]
        )
        body = {
            "content": {
                "title": f"Kettle {cohort.product_id}",
                "hazard": "The lid opens while boiling: burns.",
                "severity": "high",
                "stop_using": "Stop using the kettle.",
                "remedies": [{"type": "refund_on_destruction"}],
            },
            "rules": [{"product_ids": [cohort.product_id]}],
            "logistics_enrolled": True,
        }
        async with httpx.AsyncClient(
            base_url=self.stack.url("recall-intake"),
            headers={"X-Api-Key": self.seller_key},
            timeout=10,
        ) as intake:

            async def create() -> httpx.Response | None:
                r = await intake.post(
                    "/v1/recalls", json=body, headers={"Idempotency-Key": cohort.product_id}
                )
                return r if r.status_code == 201 else None  # 422 until intake read the listing

            recall_id = (await eventually(create, timeout=30)).json()["recall_id"]
            published = await intake.post(f"/v1/recalls/{recall_id}/publish")
            assert published.status_code == 200, published.text
        cohort.recall_id = recall_id
        return recall_id

    async def alerts_flowing(
        self, cohort: Cohort, *, share: int = 3, alerts: int = 50
    ) -> list[ev.Event]:
        """The cohort's contacts known and its recall live, the first 1/``share`` of its orders
        published and at least ``alerts`` of their alerts in customer-api: the moment a fault is
        injected mid-stream. Returns the orders still to publish."""
        await self.contacts_known(cohort)
        recall_id = await self.publish_recall(cohort)

        async def matcher_knows_recall() -> bool:
            sql = "SELECT count(*) FROM recalls WHERE recall_id = $1"
            return bool(await self.scalar("purchase-matcher", sql, recall_id))

        await eventually(matcher_knows_recall, timeout=30)
        orders = cohort.orders()
        first = len(orders) // share
        await self.publish(orders[:first])

        async def flowing() -> bool:
            sql = "SELECT count(*) FROM alerts WHERE recall_id = $1"
            return await self.scalar("customer-api", sql, recall_id) >= alerts

        await eventually(flowing, timeout=60, interval=0.1)
        return orders[first:]

    # ------------------------------------------------------------------ reading it

    async def query(self, service: str, sql: str, *args: object) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.postgres.dsn(self.databases[service]))
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    async def scalar(self, service: str, sql: str, *args: object) -> int:
        return int((await self.query(service, sql, *args))[0][0])

    async def readyz(self, service: str) -> tuple[int, dict]:
        async with httpx.AsyncClient(timeout=10) as client:
            r = await client.get(self.stack.url(service) + "/readyz")
            return r.status_code, r.json()

    async def metric(self, service: str, name: str, **labels: str) -> float:
        """The sum of a Prometheus sample over the series matching ``labels``."""
        async with httpx.AsyncClient(timeout=10) as client:
            text = (await client.get(self.stack.url(service) + "/metrics")).text
        total = 0.0
        for line in text.splitlines():
            found = re.match(rf"^{name}(?:{{(.*)}})? (\S+)$", line)
            if not found:
                continue
            have = dict(re.findall(r'(\w+)="([^"]*)"', found.group(1) or ""))
            if all(have.get(k) == v for k, v in labels.items()):
                total += float(found.group(2))
        return total

    def dead_letter_topic(self, service: str) -> str:
        return dead_letter_topic(service).physical(self.prefix)

    async def dead_letters(self) -> dict[str, list]:
        """Every service's dead letters so far (raw records)."""
        out = {}
        for name in SERVICE_NAMES:
            out[name] = await read_to_end(
                self.dead_letter_topic(name), bootstrap=self.kafka.bootstrap
            )
        return out

    async def new_dead_letters(self, before: dict[str, list]) -> dict[str, list]:
        """The dead letters written since ``before`` (a :meth:`dead_letters` snapshot)."""
        now = await self.dead_letters()
        seen = {name: {(r.partition, r.offset) for r in recs} for name, recs in before.items()}
        return {
            name: [r for r in recs if (r.partition, r.offset) not in seen.get(name, set())]
            for name, recs in now.items()
        }

    async def all_ready(self, within: float = 60) -> None:
        async def ready() -> bool:
            for name in SERVICE_NAMES:
                status, body = await self.readyz(name)
                assert status == 200, f"{name}: {body}"
            return True

        try:
            await eventually(ready, timeout=within, interval=0.5)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\nlast errors logged:\n{self.logged_errors()}") from exc

    def logged_errors(self, last: int = 3) -> str:
        """The last ERROR lines of each service's log (tracebacks included): why a part stopped."""
        out = []
        for name in SERVICE_NAMES:
            log_file = self.stack.log_dir / f"{name}.log"
            lines = log_file.read_text(errors="replace").splitlines() if log_file.exists() else []
            ours = [line for line in lines if '"logger":"aiokafka' not in line]
            errors = [line for line in ours if '"level":"error"' in line][-last:]
            out += [f"{name}: {line[:3000]}" for line in errors]
        return "\n".join(out) or "(none)"

    async def alert_ids(self, cohort: Cohort) -> list[str]:
        rows = await self.query(
            "purchase-matcher",
            "SELECT alert_id FROM alerts WHERE recall_id = $1 AND status = 'open'",
            cohort.recall_id,
        )
        return [r[0] for r in rows]

    async def effects(self, cohort: Cohort) -> dict[str, int]:
        """What each service holds for the cohort's recall: every figure is the cohort's size once
        each event was applied exactly once (rows are counted, not deduplicated, where a repeat
        could add one; emails are counted per customer, allowing for mail re-sent in doubt)."""
        ids = await self.alert_ids(cohort)
        rid = cohort.recall_id
        mails = await self.mails_to(cohort)
        resent = await self.scalar(
            "notifier",
            "SELECT coalesce(sum(resent_in_doubt), 0) FROM notices WHERE alert_id = ANY($1)",
            ids,
        )
        return {
            "purchase-matcher open alerts": len(ids),
            "customer-api alerts": await self.scalar(
                "customer-api", "SELECT count(*) FROM alerts WHERE recall_id = $1", rid
            ),
            "customer-api customers with an alert": await self.scalar(
                "customer-api",
                "SELECT count(DISTINCT customer_id) FROM alerts WHERE recall_id = $1",
                rid,
            ),
            "customer-api notices": await self.scalar(
                "customer-api", "SELECT count(*) FROM notices WHERE alert_id = ANY($1)", ids
            ),
            "notifier alerts": await self.scalar(
                "notifier", "SELECT count(*) FROM alerts WHERE alert_id = ANY($1)", ids
            ),
            "notifier notices": await self.scalar(
                "notifier", "SELECT count(*) FROM notices WHERE alert_id = ANY($1)", ids
            ),
            "notifier notices sent": await self.scalar(
                "notifier",
                "SELECT count(*) FROM notices WHERE alert_id = ANY($1) AND status = 'sent'",
                ids,
            ),
            "refund-logistics alerts": await self.scalar(
                "refund-logistics", "SELECT count(*) FROM alerts WHERE recall_id = $1", rid
            ),
            "refund-logistics notices": await self.scalar(
                "refund-logistics", "SELECT count(*) FROM notices WHERE recall_id = $1", rid
            ),
            "customers emailed": len(mails),
            # Repeats only where a notice was in doubt. A notice claimed again in doubt may not be
            # sent again after all (its first send's outcome was recorded late, after an outage):
            # a flag without a repeat is fine, a repeat without a flag is not.
            "emails, repeats only in doubt": (
                len(mails) if sum(mails.values()) - len(mails) <= resent else sum(mails.values())
            ),
        }

    async def applied_once(self, cohort: Cohort, within: float) -> dict[str, int]:
        """Wait until every service applied every event of the cohort exactly once; fail showing the
        figures that differ."""
        expected = cohort.size

        async def settled() -> dict[str, int]:
            got = await self.effects(cohort)
            off = {k: v for k, v in got.items() if v != expected}
            assert not off, f"expected {expected} of each, got {off}"
            return got

        try:
            return await eventually(settled, timeout=within, interval=1.0)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{await self.diagnose(cohort)}") from None

    async def diagnose(self, cohort: Cohort) -> str:
        """Where the cohort's notices are stuck (for a failure message)."""
        rows = await self.query(
            "notifier",
            "SELECT status, kind, attempts, left(coalesce(last_error, ''), 200) AS error, "
            "count(*) AS n, min(next_attempt_at) AS next_at FROM notices "
            "WHERE alert_id = ANY($1) AND status <> 'sent' GROUP BY 1, 2, 3, 4",
            await self.alert_ids(cohort),
        )
        stuck = await self.query(
            "notifier",
            "SELECT count(*) AS waiting, count(c.customer_id) AS with_contact, "
            "min(c.updated_at) AS first_contact, max(c.updated_at) AS last_contact, "
            "min(n.created_at) AS first_notice, max(n.created_at) AS last_notice "
            "FROM notices n LEFT JOIN contacts c ON c.customer_id = n.recipient_customer_id "
            "WHERE n.alert_id = ANY($1) AND n.status = 'waiting_contact'",
            await self.alert_ids(cohort),
        )
        return (
            "notifier notices not sent: "
            + ("; ".join(str(dict(r)) for r in rows) or "none")
            + f"\nwaiting for a contact: {dict(stuck[0])}"
            + "\n"
            + await self.sender_tasks()
        )

    async def sender_tasks(self) -> str:
        """Where the notifier's sender waits (its task stacks, recall_shared.task_dump): a sender
        stuck without an error shows here, not in its log's errors."""
        log_file = self.stack.log_dir / "notifier.log"
        start = log_file.stat().st_size
        os.kill(self.stack.processes["notifier"].pid, signal.SIGUSR1)
        await asyncio.sleep(1.0)
        with log_file.open("rb") as f:
            f.seek(start)
            lines = [orjson.loads(line) for line in f if line.startswith(b"{")]
        stacks = [
            f"{line['task']}:\n{line['stack']}"
            for line in lines
            if line.get("msg") == "task stack" and "notifier/sender.py" in line.get("stack", "")
        ]
        return "notifier sender tasks:\n" + ("\n".join(stacks) or "none")

    async def mails_to(self, cohort: Cohort) -> dict[str, int]:
        """How many messages reached the sink for each of the cohort's customers."""
        async with httpx.AsyncClient(timeout=30) as client:
            r = await client.get(self.smtp.viewer + "/messages", params={"rcpt": f"c{cohort.run}-"})
            r.raise_for_status()
        counts: dict[str, int] = {}
        for message in r.json():
            for rcpt in message["rcpt_to"]:
                counts[rcpt] = counts.get(rcpt, 0) + 1
        return counts
