"""The "am I affected?" check for a signed-in customer's alert: what they read on the label
against the recall's scope (``recall_shared.label_check``, the comparisons of matching), for each
of their affected lines. Every answer is recorded (``label_checks``). Not affected: the alert is
resolved so, the typed values kept as the reason (a confirmed alert can only be declared not
affected this way). Confirmed: ``remedy.label_confirmed.v1`` goes out (outbox) and
purchase-matcher, which owns the tier, raises the alert to confirmed on alerts.v1; the page shows
the new tier once that update arrives. Cannot tell: nothing changes."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from customer_api import logic
from customer_api.label_form import DateField, dates_asked
from customer_api.models import CustomerAlert, LabelCheck, PublicRecall
from recall_shared import events as ev
from recall_shared.event_ids import event_id
from recall_shared.label_check import Label, LabelAnswer, check
from recall_shared.service import ServiceRuntime


@dataclass(frozen=True)
class Typed:
    """What the customer typed from the label."""

    lot: str | None = None
    serial: str | None = None
    manufactured_on: date | None = None
    best_before: date | None = None
    expires_on: date | None = None

    def reason(self) -> str:
        parts = [
            f"{name} {value}"
            for name, value in (
                ("lot", self.lot),
                ("serial", self.serial),
                ("manufactured", self.manufactured_on),
                ("best before", self.best_before),
                ("expires", self.expires_on),
            )
            if value
        ]
        return "label check: " + ", ".join(parts)


async def dates_asked_of(
    session: AsyncSession, recall_ids: Sequence[str]
) -> dict[str, tuple[DateField, ...]]:
    """For the pages' forms: which label dates each recall's scope asks for (a recall whose scope
    has not arrived from recalls.v1 is missing: its check cannot tell yet whatever is typed)."""
    if not recall_ids:
        return {}
    rows = await session.execute(
        select(PublicRecall.recall_id, PublicRecall.snapshot).where(
            PublicRecall.recall_id.in_(set(recall_ids))
        )
    )
    return {
        recall_id: dates_asked(ev.RecallSnapshot.model_validate(snapshot).rules)
        for recall_id, snapshot in rows
    }


def answer_for(state: ev.AlertState, rules: list[ev.ScopeRule], typed: Typed) -> LabelAnswer:
    """Every affected line with the typed values (a typed value stands in for the recorded one):
    any line confirmed is confirmed, all lines not affected is not affected."""
    answers = [
        check(
            rules,
            Label(
                gtin=line.gtin,
                product_id=line.product_id,
                model_number=line.model_number,
                seller_id=line.seller_id,
                purchased_on=line.purchased_at.date(),
                lot=typed.lot or line.lot,
                serial=typed.serial or line.serial,
                manufactured_on=typed.manufactured_on,
                best_before=typed.best_before,
                expires_on=typed.expires_on,
            ),
        )
        for line in state.lines
    ]
    if any(a.answer == "confirmed" for a in answers):
        return LabelAnswer("confirmed")
    if answers and all(a.answer == "not_affected" for a in answers):
        return LabelAnswer("not_affected")
    unknown = dict.fromkeys(u for a in answers for u in a.unknown)
    return LabelAnswer("cannot_tell", tuple(unknown))


def confirmation_due(answer: LabelAnswer, alert: CustomerAlert) -> bool:
    """Whether a label answer is news for purchase-matcher: a confirmation of an open alert whose
    tier is not confirmed yet (as this read model last heard)."""
    return (
        answer.answer == "confirmed"
        and alert.status == "open"
        and alert.state.get("tier") != "confirmed"
    )


def _recorded(alert: CustomerAlert, answer: LabelAnswer, typed: Typed, at: datetime) -> LabelCheck:
    return LabelCheck(
        check_id=str(uuid.uuid4()),
        alert_id=alert.alert_id,
        customer_id=alert.customer_id,
        alert_version=alert.alert_version,
        answer=answer.answer,
        lot=typed.lot,
        serial=typed.serial,
        manufactured_on=typed.manufactured_on,
        best_before=typed.best_before,
        expires_on=typed.expires_on,
        checked_at=at,
    )


async def check_label(
    session: AsyncSession, runtime: ServiceRuntime, customer_id: str, alert_id: str, typed: Typed
) -> tuple[LabelAnswer, CustomerAlert]:
    alert = await logic.own_alert(session, customer_id, alert_id)
    recall = await session.get(PublicRecall, alert.recall_id)
    if recall is None:  # the recall's scope has not arrived from recalls.v1 yet
        return LabelAnswer("cannot_tell", ("recall",)), alert
    rules = ev.RecallSnapshot.model_validate(recall.snapshot).rules
    answer = answer_for(ev.AlertState.model_validate(alert.state), rules, typed)
    now = datetime.now(UTC)
    record = _recorded(alert, answer, typed, now)
    session.add(record)
    if answer.answer == "not_affected":  # committed with the declaration, or not at all
        alert = await logic.declare_not_affected(
            session, runtime, customer_id, alert_id, typed.reason(), label_checked=True
        )
        return answer, alert
    if confirmation_due(answer, alert):
        await runtime.outbox.add(
            session,
            ev.LabelConfirmed(
                alert_id=alert.alert_id,
                customer_id=customer_id,
                recall_id=alert.recall_id,
                alert_version=alert.alert_version,
                lot=typed.lot,
                serial=typed.serial,
                manufactured_on=typed.manufactured_on,
                best_before=typed.best_before,
                expires_on=typed.expires_on,
                confirmed_at=now,
            ),
            event_id=event_id("label-confirmed", record.check_id),
        )
    await session.commit()
    return answer, alert
