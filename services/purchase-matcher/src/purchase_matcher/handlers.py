"""purchase-matcher's consumers: order history into the purchase index; recalls into alerts."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy import String, any_, cast, or_, select, update
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncSession

from purchase_matcher.domain import ALERT_NAMESPACE, Line, Previous, build_alert, decide, line_tier, model_key, next_version
from purchase_matcher.models import ActiveRecall, Alert, PurchaseLine
from recall_shared import events as ev
from recall_shared.envelope import Envelope
from recall_shared.identifiers import normalise_gtin
from recall_shared.outbox import Outbox


def sale_event_id(recall_id: str, line_id: str) -> str:
    """Deterministic, and short enough for the outbox's 64-character event id whatever the upstream ids."""
    return "sale:" + str(uuid.uuid5(ALERT_NAMESPACE, f"{recall_id}\x1f{line_id}"))


def gtin14(raw: str | None) -> str | None:
    """Order history spells GTINs every way ("0-11110-91128-5", UPC-12, EAN-13); recalls carry GTIN-14.
    An unreadable GTIN is dropped (it could match no rule, and must not stop the order from being indexed)."""
    return normalise_gtin(raw).gtin14 if raw else None


def to_line(row: PurchaseLine) -> Line:
    return Line(
        line_id=row.line_id, order_id=row.order_id, customer_id=row.customer_id, product_id=row.product_id,
        title=row.title, gtin=row.gtin, model_number=row.model_number, seller_id=row.seller_id,
        quantity=row.quantity, returned_quantity=row.returned_quantity, cancelled=row.cancelled,
        unit_price=row.unit_price, currency=row.currency, lot=row.lot, serial=row.serial,
        placed_at=row.placed_at, business_account_admin_id=row.business_account_admin_id,
        manufactured_on=row.manufactured_on, best_before=row.best_before, expires_on=row.expires_on,
    )


def _identifier_filter(recall: ev.RecallSnapshot):  # type: ignore[no-untyped-def]
    pids = sorted({p for r in recall.rules for p in r.product_ids})
    gtins = sorted({g for r in recall.rules for g in r.gtins})
    models = sorted({k for r in recall.rules for m in r.model_numbers if (k := model_key(m))})
    clauses = []
    if pids:
        clauses.append(PurchaseLine.product_id.in_(pids))
    if gtins:
        clauses.append(PurchaseLine.gtin.in_(gtins))
    if models:
        clauses.append(PurchaseLine.model_key.in_(models))
    return or_(*clauses) if clauses else None


def order_line_rows(event: ev.OrderPlaced) -> list[dict]:
    """Purchase-index rows of an order: GTINs as GTIN-14 (unreadable ones dropped), model numbers keyed."""
    return [
        {
            "line_id": l.line_id, "order_id": event.order_id, "customer_id": event.customer_id,
            "product_id": l.product_id, "title": l.title, "gtin": gtin14(l.gtin), "model_number": l.model_number,
            "model_key": model_key(l.model_number), "seller_id": l.seller_id, "quantity": l.quantity,
            "returned_quantity": 0, "cancelled": False, "unit_price": l.unit_price, "currency": l.currency,
            "lot": l.lot, "serial": l.serial, "placed_at": event.placed_at,
            "manufactured_on": l.manufactured_on, "best_before": l.best_before, "expires_on": l.expires_on,
            "business_account_admin_id": event.business_account_admin_id,
        }
        for l in event.lines
    ]


RECONCILE_BATCH = 1000  # customers settled per round trip
RECONCILE_STREAM_ROWS = 5000  # rows fetched per cursor step


class Matcher:
    """Reconciles alerts with the purchase index and writes the difference to the outbox."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    async def reconcile(
        self, session: AsyncSession, recall: ev.RecallSnapshot, env: Envelope, customer_ids: Iterable[str] | None = None
    ) -> dict[str, int]:
        """Bring the alerts of ``recall`` (for the given customers, or all) in line with the purchase index.

        Streams the matching lines in customer order through a server-side cursor and settles them
        ``RECONCILE_BATCH`` customers at a time (bulk alert upsert, one outbox insert per batch), so memory
        stays bounded however many customers a recall reaches. Every alert this pass confirms is stamped
        with the pass id; open alerts left unstamped at the end are the ones to withdraw.
        """
        only = sorted(set(customer_ids)) if customer_ids is not None else None
        counts = {"raise": 0, "update": 0, "withdraw": 0, "none": 0}
        pass_id = str(uuid.uuid4())
        flt = _identifier_filter(recall)
        if flt is not None:
            stmt = select(PurchaseLine).where(flt).order_by(PurchaseLine.customer_id, PurchaseLine.line_id)
            if only is not None:
                stmt = stmt.where(PurchaseLine.customer_id.in_(only))
            batch: dict[str, list[Line]] = {}
            rows = await session.stream_scalars(stmt.execution_options(yield_per=RECONCILE_STREAM_ROWS))
            async for row in rows:
                if row.customer_id not in batch and len(batch) >= RECONCILE_BATCH:
                    await self._settle(session, recall, env, batch, pass_id, counts)
                    batch = {}
                batch.setdefault(row.customer_id, []).append(to_line(row))
            if batch:
                await self._settle(session, recall, env, batch, pass_id, counts)
        stale = select(Alert).where(
            Alert.recall_id == recall.recall_id, Alert.status == "open", Alert.reconcile_pass.is_distinct_from(pass_id)
        )
        if only is not None:
            stale = stale.where(Alert.customer_id.in_(only))
        while True:  # withdraw in batches; each batch is stamped as it is withdrawn, so the loop ends
            left = list((await session.execute(stale.limit(RECONCILE_BATCH).with_for_update())).scalars())
            if not left:
                break
            await self._withdraw(session, recall, env, left, pass_id)
            counts["withdraw"] += len(left)
        return counts

    async def _settle(
        self, session: AsyncSession, recall: ev.RecallSnapshot, env: Envelope, batch: dict[str, list[Line]],
        pass_id: str, counts: dict[str, int],
    ) -> None:
        # One array parameter, not one bind per customer: the statement stays the same for every batch.
        existing = {
            a.customer_id: a
            for a in (
                await session.execute(
                    select(Alert)
                    .where(Alert.recall_id == recall.recall_id, Alert.customer_id == any_(cast(list(batch), ARRAY(String))))
                    .with_for_update()
                )
            ).scalars()
        }
        upserts: list[dict] = []
        unchanged: list[str] = []
        events: list[tuple[ev.Event, str | None]] = []
        for customer_id, lines in batch.items():
            row = existing.get(customer_id)
            prev = Previous(row.alert_version, row.status, row.fingerprint, row.recall_version) if row is not None else None
            draft = build_alert(recall, customer_id, lines)
            change = decide(prev, draft, recall.version)
            if change == "withdraw":
                continue  # still open and unstamped: the withdrawal sweep takes it
            counts[change] += 1
            if change == "none":
                if row is not None:
                    unchanged.append(row.alert_id)
                continue
            assert draft is not None
            version = next_version(prev, draft)
            state = draft.state.model_copy(update={"alert_version": version})
            upserts.append({
                "alert_id": state.alert_id, "customer_id": customer_id, "recall_id": recall.recall_id,
                "recall_version": recall.version, "alert_version": version, "status": "open", "tier": state.tier,
                "fingerprint": draft.fingerprint, "state": state.model_dump(mode="json"), "reconcile_pass": pass_id,
            })
            event: ev.Event = ev.AlertRaised(alert=state) if change == "raise" else ev.AlertUpdated(alert=state)
            events.append((event, f"{state.alert_id}:{version}:{recall.version}:{event.event_type}"))
        if upserts:
            stmt = insert(Alert)
            await session.execute(
                stmt.on_conflict_do_update(
                    index_elements=[Alert.alert_id], set_={k: stmt.excluded[k] for k in upserts[0] if k != "alert_id"}
                ),
                upserts,
            )
        if unchanged:
            await session.execute(
                update(Alert).where(Alert.alert_id == any_(cast(unchanged, ARRAY(String)))).values(reconcile_pass=pass_id)
            )
        if events:
            await self.outbox.add_many(session, events, causation_id=env.id)

    async def _withdraw(
        self, session: AsyncSession, recall: ev.RecallSnapshot, env: Envelope, rows: list[Alert], pass_id: str
    ) -> None:
        events: list[tuple[ev.Event, str | None]] = []
        for row in rows:
            row.status = "withdrawn"
            row.alert_version += 1
            row.recall_version = recall.version
            row.reconcile_pass = pass_id
            withdrawn = ev.AlertWithdrawn(
                alert_id=row.alert_id, alert_version=row.alert_version, customer_id=row.customer_id,
                recall_id=recall.recall_id, recall_version=recall.version,
                reason="Your purchase is no longer within the scope of this recall.",
            )
            events.append((withdrawn, f"{row.alert_id}:{row.alert_version}:{withdrawn.event_type}"))
        await session.flush()
        await self.outbox.add_many(session, events, causation_id=env.id)

    # ------------------------------------------------------------------ recalls.v1

    async def on_recall_changed(self, session: AsyncSession, event: ev.RecallPublished | ev.RecallAmended, env: Envelope) -> None:
        snap = event.recall
        current = await session.get(ActiveRecall, snap.recall_id, with_for_update=True)
        if current is not None and (current.version > snap.version or current.status == "closed"):
            return  # an older version, or a recall already closed: nothing to do
        values = {
            "recall_id": snap.recall_id, "version": snap.version, "status": "active",
            "snapshot": snap.model_dump(mode="json"), "published_at": snap.published_at,
        }
        stmt = insert(ActiveRecall).values(**values)
        await session.execute(
            stmt.on_conflict_do_update(index_elements=[ActiveRecall.recall_id], set_={k: stmt.excluded[k] for k in values})
        )
        await self.reconcile(session, snap, env)

    async def on_recall_closed(self, session: AsyncSession, event: ev.RecallClosed, env: Envelope) -> None:
        snap = event.recall
        current = await session.get(ActiveRecall, snap.recall_id, with_for_update=True)
        if current is not None and current.status == "closed":
            return
        values = {
            "recall_id": snap.recall_id, "version": snap.version, "status": "closed",
            "snapshot": snap.model_dump(mode="json"), "published_at": snap.published_at,
        }
        stmt = insert(ActiveRecall).values(**values)
        await session.execute(
            stmt.on_conflict_do_update(index_elements=[ActiveRecall.recall_id], set_={k: stmt.excluded[k] for k in values})
        )
        rows = (
            await session.execute(select(Alert).where(Alert.recall_id == snap.recall_id, Alert.status == "open"))
        ).scalars()
        for row in rows:
            row.status = "closed"
            closed = ev.AlertClosed(alert_id=row.alert_id, customer_id=row.customer_id, recall_id=snap.recall_id, closed_at=event.closed_at)
            await self.outbox.add(session, closed, causation_id=env.id, event_id=f"{row.alert_id}:{closed.event_type}")

    # ------------------------------------------------------------------ orders.v1

    async def _active_recalls(self, session: AsyncSession) -> list[ev.RecallSnapshot]:
        rows = (await session.execute(select(ActiveRecall).where(ActiveRecall.status == "active"))).scalars()
        return [ev.RecallSnapshot.model_validate(r.snapshot) for r in rows]

    async def _recheck_customer(self, session: AsyncSession, customer_id: str, lines: list[Line], env: Envelope) -> list[ev.RecallSnapshot]:
        """Reconcile this customer's alert for every active recall that reaches one of the changed lines
        or already has an alert for them."""
        hit: list[ev.RecallSnapshot] = []
        with_alerts = set(
            (await session.execute(select(Alert.recall_id).where(Alert.customer_id == customer_id, Alert.status == "open"))).scalars()
        )
        for recall in await self._active_recalls(session):
            if recall.recall_id in with_alerts or any(line_tier(recall.rules, l) for l in lines):
                await self.reconcile(session, recall, env, customer_ids=[customer_id])
                hit.append(recall)
        return hit

    async def on_order_placed(self, session: AsyncSession, event: ev.OrderPlaced, env: Envelope) -> None:
        rows = order_line_rows(event)
        await session.execute(insert(PurchaseLine).values(rows).on_conflict_do_nothing(index_elements=["line_id"]))
        lines = [to_line(PurchaseLine(**r)) for r in rows]
        for recall in await self._recheck_customer(session, event.customer_id, lines, env):
            if event.placed_at <= recall.published_at:
                continue
            for line in lines:
                if line_tier(recall.rules, line):
                    incident = ev.SaleAfterRecallDetected(
                        recall_id=recall.recall_id, recall_version=recall.version, customer_id=event.customer_id,
                        order_id=event.order_id, line_id=line.line_id, product_id=line.product_id,
                        seller_id=line.seller_id, placed_at=event.placed_at, recall_published_at=recall.published_at,
                    )
                    await self.outbox.add(
                        session, incident, causation_id=env.id, event_id=sale_event_id(recall.recall_id, line.line_id)
                    )

    async def _changed(self, session: AsyncSession, customer_id: str, line_ids: list[str], env: Envelope) -> None:
        rows = (await session.execute(select(PurchaseLine).where(PurchaseLine.line_id.in_(line_ids)))).scalars()
        await self._recheck_customer(session, customer_id, [to_line(r) for r in rows], env)

    async def on_line_shipped(self, session: AsyncSession, event: ev.OrderLineShipped, env: Envelope) -> None:
        learnt = (("lot", event.lot), ("serial", event.serial), ("manufactured_on", event.manufactured_on),
                  ("best_before", event.best_before), ("expires_on", event.expires_on))
        values = {k: v for k, v in learnt if v is not None}
        if values:
            await session.execute(update(PurchaseLine).where(PurchaseLine.line_id == event.line_id).values(**values))
        await self._changed(session, event.customer_id, [event.line_id], env)

    async def on_order_cancelled(self, session: AsyncSession, event: ev.OrderCancelled, env: Envelope) -> None:
        stmt = update(PurchaseLine).where(PurchaseLine.order_id == event.order_id)
        if event.line_ids is not None:
            stmt = stmt.where(PurchaseLine.line_id.in_(event.line_ids))
        result = await session.execute(stmt.values(cancelled=True).returning(PurchaseLine.line_id))
        await self._changed(session, event.customer_id, list(result.scalars()), env)

    async def on_line_returned(self, session: AsyncSession, event: ev.OrderLineReturned, env: Envelope) -> None:
        await session.execute(
            update(PurchaseLine)
            .where(PurchaseLine.line_id == event.line_id)
            .values(returned_quantity=PurchaseLine.returned_quantity + event.quantity)
        )
        await self._changed(session, event.customer_id, [event.line_id], env)

    def handlers(self) -> dict:
        return {
            ev.RecallPublished: self.on_recall_changed,
            ev.RecallAmended: self.on_recall_changed,
            ev.RecallClosed: self.on_recall_closed,
            ev.OrderPlaced: self.on_order_placed,
            ev.OrderLineShipped: self.on_line_shipped,
            ev.OrderCancelled: self.on_order_cancelled,
            ev.OrderLineReturned: self.on_line_returned,
        }
