"""Shipment holds: order lines placed but not shipped that a recall reaches, on shipment_holds.v1.

A line is awaiting shipment from its ``order.placed.v1`` until its ``order.line_shipped.v1``. When a
recall is published or amended, or an order event changes a line, every line awaiting shipment that
the recall reaches (domain.line_reach, as matching) gets a ``shipment_hold.declared.v1``; the hold
is released (``shipment_hold.released.v1``) when the recall is closed, when an amendment or what
the shipment told (its lot, say) puts the line out of scope, when it is cancelled, or when it ships
regardless. Everything goes through the outbox in the handler's transaction; a recall's pass holds
the recall's row lock (Matcher.reconcile), an order event the lines' rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, and_, false, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from purchase_matcher.domain import (
    Line,
    Reach,
    Recorded,
    line_reach,
    recall_identifiers,
    settle,
    transition_id,
)
from purchase_matcher.models import PurchaseLine, ShipmentHold
from recall_shared import events as ev
from recall_shared.envelope import Envelope
from recall_shared.outbox import Outbox

_COLUMNS = [getattr(PurchaseLine, f) for f in Line._fields]
_BY_KIND = {
    "product": PurchaseLine.product_id,
    "gtin": PurchaseLine.gtin,
    "model": PurchaseLine.model_key,
}


def _release_reason(
    recall: ev.RecallSnapshot, line: Line | None, closed: bool
) -> ev.ShipmentHoldReleaseReason:
    """Why a held line is held no more (it is not awaiting shipment in scope any more)."""
    if closed:
        return "recall_closed"
    if line is not None and line.units == 0:
        return "cancelled"
    if line is None or line_reach(recall.rules, line) is None:
        return "out_of_scope"  # the amended scope, or the lot or serial the shipment told
    return "shipped"  # in scope, and it left all the same: the customer's alert takes over


class ShipmentHolds:
    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    async def recall_changed(
        self, session: AsyncSession, recall: ev.RecallSnapshot, env: Envelope
    ) -> None:
        """Every line awaiting shipment the recall names, and every line it holds."""
        named = [_BY_KIND[kind].in_(values) for kind, values in recall_identifiers(recall).items()]
        held = select(ShipmentHold.line_id).where(
            ShipmentHold.recall_id == recall.recall_id, ShipmentHold.status == "held"
        )
        # Two statements, not one with OR: each uses its index (the partial ones on lines awaiting
        # shipment, and the primary key), never a scan of the whole purchase index.
        awaiting = await self._lines(
            session, and_(PurchaseLine.awaiting_shipment, or_(false(), *named))
        )
        seen = {line.line_id for line, _ in awaiting}
        held_lines = [
            (line, waiting)
            for line, waiting in await self._lines(session, PurchaseLine.line_id.in_(held))
            if line.line_id not in seen
        ]
        await self._settle(session, recall, awaiting + held_lines, None, env)

    async def recall_closed(
        self, session: AsyncSession, event: ev.RecallClosed, env: Envelope
    ) -> None:
        await self._settle(session, event.recall, [], None, env, closed=True)

    async def lines_changed(
        self,
        session: AsyncSession,
        line_ids: list[str],
        recalls: Iterable[ev.RecallSnapshot],
        env: Envelope,
    ) -> None:
        """Order events changed these lines; ``recalls`` are the active ones that could reach
        them."""
        recalls = list(recalls)
        if not recalls:
            return  # the common case: nothing to hold or release, and nothing read
        lines = await self._lines(session, PurchaseLine.line_id.in_(line_ids))
        for recall in recalls:
            await self._settle(session, recall, lines, line_ids, env)

    async def _lines(
        self, session: AsyncSession, where: ColumnElement[bool]
    ) -> list[tuple[Line, bool]]:
        rows = await session.execute(select(*_COLUMNS, PurchaseLine.awaiting_shipment).where(where))
        return [(Line(*r[:-1]), r[-1]) for r in rows]

    async def _settle(
        self,
        session: AsyncSession,
        recall: ev.RecallSnapshot,
        lines: list[tuple[Line, bool]],
        line_ids: list[str] | None,
        env: Envelope,
        *,
        closed: bool = False,
    ) -> None:
        now = datetime.now(UTC)
        wanted: dict[tuple[str], Reach] = {}
        if not closed:
            for line, awaiting in lines:
                if awaiting and line.units > 0 and (reach := line_reach(recall.rules, line)):
                    wanted[(line.line_id,)] = reach
        query = select(ShipmentHold).where(ShipmentHold.recall_id == recall.recall_id)
        if line_ids is not None:
            query = query.where(ShipmentHold.line_id.in_(line_ids))
        rows = {(r.line_id,): r for r in (await session.execute(query.with_for_update())).scalars()}
        recorded = {
            key: Recorded(r.status == "held", r.tier, tuple(r.unknown_attributes))
            for key, r in rows.items()
        }
        by_id: dict[str, tuple[Line | None, bool]] = {
            line.line_id: (line, awaiting) for line, awaiting in lines
        }
        events: list[tuple[ev.Event, str | None]] = []
        for key, change, reach in settle(recorded, wanted):
            (line_id,) = key
            row = rows.get(key)
            known, _ = by_id.get(line_id, (None, False))
            transitions = (row.transitions if row else 0) + 1
            if change == "declare" and reach is not None and known is not None:
                line = known
                event: ev.Event = ev.ShipmentHoldDeclared(
                    recall_id=recall.recall_id,
                    recall_version=recall.version,
                    order_id=line.order_id,
                    line_id=line_id,
                    customer_id=line.customer_id,
                    product_id=line.product_id,
                    seller_id=line.seller_id,
                    tier=reach.tier,
                    unknown_attributes=list(reach.unknown),
                    declared_at=now,
                )
                order_id, customer_id = line.order_id, line.customer_id
                status, tier, unknown = "held", str(reach.tier), list(reach.unknown)
            else:
                assert row is not None  # only held lines are released
                event = ev.ShipmentHoldReleased(
                    recall_id=recall.recall_id,
                    recall_version=recall.version,
                    order_id=row.order_id,
                    line_id=line_id,
                    customer_id=row.customer_id,
                    reason=_release_reason(recall, known, closed),
                    released_at=now,
                )
                order_id, customer_id = row.order_id, row.customer_id
                status, tier, unknown = "released", row.tier, list(row.unknown_attributes)
            values = {
                "recall_id": recall.recall_id,
                "line_id": line_id,
                "order_id": order_id,
                "customer_id": customer_id,
                "recall_version": recall.version,
                "status": status,
                "tier": tier,
                "unknown_attributes": unknown,
                "transitions": transitions,
                "updated_at": now,
            }
            stmt = insert(ShipmentHold).values(**values)
            await session.execute(
                stmt.on_conflict_do_update(
                    index_elements=["recall_id", "line_id"],
                    set_={k: stmt.excluded[k] for k in values},
                )
            )
            parts = (recall.recall_id, line_id)
            events.append((event, transition_id("hold", parts, transitions)))
        if events:
            await self.outbox.add_many(session, events, causation_id=env.id)
