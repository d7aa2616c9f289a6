"""purchase-matcher's consumers: order history into the purchase index; recalls into alerts."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable

from sqlalchemy import or_, select, update
from sqlalchemy.dialects.postgresql import insert
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


class Matcher:
    """Reconciles alerts with the purchase index and writes the difference to the outbox."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    async def reconcile(
        self, session: AsyncSession, recall: ev.RecallSnapshot, env: Envelope, customer_ids: Iterable[str] | None = None
    ) -> dict[str, int]:
        """Bring the alerts of ``recall`` (for the given customers, or all) in line with the purchase index."""
        only = set(customer_ids) if customer_ids is not None else None
        lines_by_customer: dict[str, list[Line]] = defaultdict(list)
        flt = _identifier_filter(recall)
        if flt is not None:
            stmt = select(PurchaseLine).where(flt)
            if only is not None:
                stmt = stmt.where(PurchaseLine.customer_id.in_(only))
            for row in (await session.execute(stmt)).scalars():
                lines_by_customer[row.customer_id].append(to_line(row))
        alert_stmt = select(Alert).where(Alert.recall_id == recall.recall_id).with_for_update()
        if only is not None:
            alert_stmt = alert_stmt.where(Alert.customer_id.in_(only))
        existing = {a.customer_id: a for a in (await session.execute(alert_stmt)).scalars()}
        counts = {"raise": 0, "update": 0, "withdraw": 0, "none": 0}
        for customer_id in sorted(set(lines_by_customer) | set(existing)):
            row = existing.get(customer_id)
            prev = (
                Previous(row.alert_version, row.status, row.fingerprint, row.recall_version) if row is not None else None
            )
            draft = build_alert(recall, customer_id, lines_by_customer.get(customer_id, ()))
            change = decide(prev, draft, recall.version)
            counts[change] += 1
            if change in ("raise", "update"):
                assert draft is not None
                version = next_version(prev, draft)
                state = draft.state.model_copy(update={"alert_version": version})
                await self._upsert(session, state, draft.fingerprint)
                event: ev.Event = ev.AlertRaised(alert=state) if change == "raise" else ev.AlertUpdated(alert=state)
                await self.outbox.add(
                    session, event, causation_id=env.id,
                    event_id=f"{state.alert_id}:{version}:{recall.version}:{event.event_type}",
                )
            elif change == "withdraw":
                assert row is not None
                row.status = "withdrawn"
                row.alert_version += 1
                row.recall_version = recall.version
                withdrawn = ev.AlertWithdrawn(
                    alert_id=row.alert_id, alert_version=row.alert_version, customer_id=customer_id,
                    recall_id=recall.recall_id, recall_version=recall.version,
                    reason="Your purchase is no longer within the scope of this recall.",
                )
                await self.outbox.add(
                    session, withdrawn, causation_id=env.id,
                    event_id=f"{row.alert_id}:{row.alert_version}:{withdrawn.event_type}",
                )
        return counts

    async def _upsert(self, session: AsyncSession, state: ev.AlertState, fingerprint: str) -> None:
        values = {
            "alert_id": state.alert_id, "customer_id": state.customer_id, "recall_id": state.recall_id,
            "recall_version": state.recall_version, "alert_version": state.alert_version, "status": "open",
            "tier": state.tier, "fingerprint": fingerprint, "state": state.model_dump(mode="json"),
        }
        stmt = insert(Alert).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=[Alert.alert_id], set_={k: stmt.excluded[k] for k in values if k != "alert_id"}
        )
        await session.execute(stmt)

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

    async def _active_recalls(self, session: AsyncSession) -> list[tuple[ev.RecallSnapshot, bool]]:
        rows = (await session.execute(select(ActiveRecall).where(ActiveRecall.status == "active"))).scalars()
        return [(ev.RecallSnapshot.model_validate(r.snapshot), True) for r in rows]

    async def _recheck_customer(self, session: AsyncSession, customer_id: str, lines: list[Line], env: Envelope) -> list[ev.RecallSnapshot]:
        """Reconcile this customer's alert for every active recall that reaches one of the changed lines
        or already has an alert for them."""
        hit: list[ev.RecallSnapshot] = []
        with_alerts = set(
            (await session.execute(select(Alert.recall_id).where(Alert.customer_id == customer_id, Alert.status == "open"))).scalars()
        )
        for recall, _ in await self._active_recalls(session):
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
