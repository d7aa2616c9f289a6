"""customer-api's consumers: the read model from alerts.v1, remedies.v1 and notifications.v1.

The one-event handlers say what each event does to the read model. The consumers run the batch
forms (``handle_many``): a run of consecutive deliveries in one statement per table, leaving rows
exactly as the one-event handlers applied in order would. A bulk statement may touch a row only
once, so each batch form first folds its run to one row per key.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from typing import cast as cast_type

import orjson
from sqlalchemy import (
    Boolean,
    DateTime,
    Integer,
    Numeric,
    String,
    Table,
    Text,
    any_,
    bindparam,
    cast,
    column,
    func,
    literal,
    select,
    update,
    values,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, insert
from sqlalchemy.ext.asyncio import AsyncSession

from customer_api.models import CustomerAlert, RemedyRequest, SentNotice
from recall_shared import events as ev
from recall_shared.db import statement_chunks
from recall_shared.envelope import Envelope
from recall_shared.handlers import Delivery, HandlerMap, batched
from recall_shared.remedy_states import COMPLETED_CASE_STATES
from recall_shared.shared_parts import alert_state_json

SEVERITY_RANK = {"critical": 0, "high": 1, "medium": 2, "low": 3}
FINAL_CASE_STATES = COMPLETED_CASE_STATES  # the remedy was delivered (recall_shared.remedy_states)

# --------------------------------------------------------------------------- alert states


# The alerts' columns as arrays, one element per row: a statement of constant shape (compiled once,
# two orders of magnitude fewer bind parameters than a multi-row VALUES), whatever the run's length.
_ALERT_ARRAYS = (
    func.unnest(
        *(
            bindparam(name, type_=ARRAY(t))
            for name, t in (
                ("alert_id", String),
                ("customer_id", String),
                ("recall_id", String),
                ("alert_version", Integer),
                ("severity_rank", Integer),
                ("state", Text),
            )
        )
    )
    .table_valued(
        column("alert_id", String),
        column("customer_id", String),
        column("recall_id", String),
        column("alert_version", Integer),
        column("severity_rank", Integer),
        column("state", Text),
    )
    .render_derived("alert_rows")
)


# Core, not the ORM: an ORM-enabled INSERT would read the arrays' names as column values.
_ALERTS = cast_type(Table, CustomerAlert.__table__)
_ALERT_INSERT = insert(_ALERTS).from_select(
    [
        "alert_id",
        "customer_id",
        "recall_id",
        "alert_version",
        "severity_rank",
        "state",
        "status",
        "updated_at",
    ],
    select(
        _ALERT_ARRAYS.c.alert_id,
        _ALERT_ARRAYS.c.customer_id,
        _ALERT_ARRAYS.c.recall_id,
        _ALERT_ARRAYS.c.alert_version,
        _ALERT_ARRAYS.c.severity_rank,
        cast(_ALERT_ARRAYS.c.state, JSONB),
        literal("open"),
        bindparam("now", type_=DateTime(timezone=True)),
    ),
)
UPSERT_ALERTS = _ALERT_INSERT.on_conflict_do_update(
    index_elements=["alert_id"],
    set_={
        k: _ALERT_INSERT.excluded[k]
        for k in ("recall_id", "alert_version", "status", "severity_rank", "state", "updated_at")
    },
    # Events of one customer arrive in order, but a replay must never roll the state back.
    where=_ALERTS.c.alert_version <= _ALERT_INSERT.excluded.alert_version,
)


async def _upsert_alerts(session: AsyncSession, states: Sequence[ev.AlertState]) -> None:
    """The guarded upserts of ``states`` in order, in one statement (see newest_alert_columns)."""
    if states:
        columns = newest_alert_columns(states)
        await session.execute(UPSERT_ALERTS, {**columns, "now": datetime.now(UTC)})


def newest_alert_columns(states: Sequence[ev.AlertState]) -> dict[str, list[Any]]:
    """One row per alert, as the guarded upserts of ``states`` in order would leave it, as a list
    per column: the highest version's state (on a tie the later one: ``<=`` lets it win), with the
    customer the alert was first seen with (a row keeps its customer; a new row is inserted by the
    first event)."""
    newest: dict[str, ev.AlertState] = {}
    first_customer: dict[str, str] = {}
    for state in states:
        first_customer.setdefault(state.alert_id, state.customer_id)
        kept = newest.get(state.alert_id)
        if kept is None or state.alert_version >= kept.alert_version:
            newest[state.alert_id] = state
    rows = newest.values()
    return {
        "alert_id": list(newest),
        "customer_id": [first_customer[alert_id] for alert_id in newest],
        "recall_id": [s.recall_id for s in rows],
        "alert_version": [s.alert_version for s in rows],
        "severity_rank": [SEVERITY_RANK[s.recall.severity] for s in rows],
        "state": [alert_state_json(s) for s in rows],
    }


async def on_alert_raised(session: AsyncSession, event: ev.AlertRaised, env: Envelope) -> None:
    await _upsert_alerts(session, [event.alert])


async def on_alert_updated(session: AsyncSession, event: ev.AlertUpdated, env: Envelope) -> None:
    await _upsert_alerts(session, [event.alert])


async def apply_alert_states(
    session: AsyncSession, deliveries: Sequence[Delivery[ev.AlertRaised | ev.AlertUpdated]]
) -> None:
    """alert.raised.v1 and alert.updated.v1 (the same upsert): one statement for the run."""
    await _upsert_alerts(session, [d.event.alert for d in deliveries])


# --------------------------------------------------------------------------- withdrawals, closures


async def on_alert_withdrawn(
    session: AsyncSession, event: ev.AlertWithdrawn, env: Envelope
) -> None:
    await session.execute(
        update(CustomerAlert)
        .where(
            CustomerAlert.alert_id == event.alert_id,
            CustomerAlert.alert_version < event.alert_version,
        )
        .values(status="withdrawn", alert_version=event.alert_version, updated_at=datetime.now(UTC))
    )


# A run's highest withdrawal per alert as arrays, and its closures as one array: statements of
# constant shape, compiled once (a VALUES list or an IN list is rendered anew for every run).
_WITHDRAWN = (
    func.unnest(
        bindparam("withdrawn_ids", type_=ARRAY(String)),
        bindparam("withdrawn_versions", type_=ARRAY(Integer)),
    )
    .table_valued(column("alert_id", String), column("alert_version", Integer))
    .render_derived("withdrawn")
)
WITHDRAW_ALERTS = (
    update(_ALERTS)
    .where(
        _ALERTS.c.alert_id == _WITHDRAWN.c.alert_id,
        _ALERTS.c.alert_version < _WITHDRAWN.c.alert_version,
    )
    .values(
        status="withdrawn",
        alert_version=_WITHDRAWN.c.alert_version,
        updated_at=bindparam("now", type_=DateTime(timezone=True)),
    )
)
CLOSE_ALERTS = (
    update(_ALERTS)
    .where(_ALERTS.c.alert_id == any_(bindparam("alert_ids", type_=ARRAY(String))))
    .values(status="closed", updated_at=bindparam("now", type_=DateTime(timezone=True)))
)


async def apply_withdrawals(
    session: AsyncSession, deliveries: Sequence[Delivery[ev.AlertWithdrawn]]
) -> None:
    """Withdrawals of one alert apply while each is newer than the row, so their net effect is the
    highest version's: one guarded UPDATE with it per alert."""
    highest: dict[str, int] = {}
    for d in deliveries:
        e = d.event
        highest[e.alert_id] = max(highest.get(e.alert_id, e.alert_version), e.alert_version)
    await session.execute(
        WITHDRAW_ALERTS,
        {
            "withdrawn_ids": list(highest),
            "withdrawn_versions": list(highest.values()),
            "now": datetime.now(UTC),
        },
    )


async def on_alert_closed(session: AsyncSession, event: ev.AlertClosed, env: Envelope) -> None:
    await session.execute(
        update(CustomerAlert)
        .where(CustomerAlert.alert_id == event.alert_id)
        .values(status="closed", updated_at=datetime.now(UTC))
    )


async def apply_closures(
    session: AsyncSession, deliveries: Sequence[Delivery[ev.AlertClosed]]
) -> None:
    alert_ids = list(dict.fromkeys(d.event.alert_id for d in deliveries))
    await session.execute(CLOSE_ALERTS, {"alert_ids": alert_ids, "now": datetime.now(UTC)})


# --------------------------------------------------------------------------- remedy cases


def _timeline_entry(event: ev.RemedyCaseTransitioned | ev.RemedyCaseProgressed) -> dict[str, Any]:
    """One step of the case page's timeline (case_progress.py reads it)."""
    if isinstance(event, ev.RemedyCaseProgressed):
        return {"step": event.step, "at": event.occurred_at.isoformat(), "attempt": event.attempt}
    return {"step": event.transition, "at": event.occurred_at.isoformat()}


async def on_case_transitioned(
    session: AsyncSession, event: ev.RemedyCaseTransitioned, env: Envelope
) -> None:
    label = (
        {"label_url": event.label.label_url, "label_tracking_number": event.label.tracking_number}
        if event.label
        else {}
    )
    await session.execute(
        update(RemedyRequest)
        .where(RemedyRequest.request_id == event.request_id)
        .values(
            case_id=event.case_id,
            case_state=event.state,
            refunded_amount=event.refunded_amount,
            currency=event.currency,
            reason=event.reason,
            updated_at=event.occurred_at,
            waiting_for=event.waiting_for,
            timeline=RemedyRequest.timeline.op("||")(
                cast(literal(orjson.dumps([_timeline_entry(event)]).decode()), JSONB)
            ),
            **label,
        )
    )
    if event.state in FINAL_CASE_STATES:
        await session.execute(
            update(CustomerAlert)
            .where(CustomerAlert.alert_id == event.alert_id)
            .values(resolution="remedied")
        )


async def apply_case_transitions(
    session: AsyncSession, deliveries: Sequence[Delivery[ev.RemedyCaseTransitioned]]
) -> None:
    """Each transition overwrites its request's case columns, so the last one per request stands
    (the label: the last one given); every one adds its step to the timeline; an alert any of them
    brought to a final state is remedied."""
    last: dict[str, ev.RemedyCaseTransitioned] = {d.event.request_id: d.event for d in deliveries}
    steps: dict[str, list[dict[str, Any]]] = {}
    labels: dict[str, ev.ReturnLabelRef] = {}
    for d in deliveries:
        steps.setdefault(d.event.request_id, []).append(_timeline_entry(d.event))
        if d.event.label is not None:
            labels[d.event.request_id] = d.event.label
    for chunk in statement_chunks(list(last.values())):
        case = values(
            column("request_id", String),
            column("case_id", String),
            column("case_state", String),
            column("refunded_amount", Numeric(14, 2)),
            column("currency", String),
            column("reason", Text),
            column("updated_at", DateTime(timezone=True)),
            column("waiting_for", String),
            column("label_url", Text),
            column("label_tracking_number", String),
            column("steps", Text),
            name="transitioned",
        ).data(
            [
                (
                    e.request_id,
                    e.case_id,
                    e.state,
                    e.refunded_amount,
                    e.currency,
                    e.reason,
                    e.occurred_at,
                    e.waiting_for,
                    labels[e.request_id].label_url if e.request_id in labels else None,
                    labels[e.request_id].tracking_number if e.request_id in labels else None,
                    orjson.dumps(steps[e.request_id]).decode(),
                )
                for e in chunk
            ]
        )
        await session.execute(
            update(RemedyRequest)
            .where(RemedyRequest.request_id == case.c.request_id)
            .values(
                case_id=case.c.case_id,
                case_state=case.c.case_state,
                refunded_amount=case.c.refunded_amount,
                currency=case.c.currency,
                reason=case.c.reason,
                updated_at=case.c.updated_at,
                waiting_for=case.c.waiting_for,
                label_url=func.coalesce(case.c.label_url, RemedyRequest.label_url),
                label_tracking_number=func.coalesce(
                    case.c.label_tracking_number, RemedyRequest.label_tracking_number
                ),
                timeline=RemedyRequest.timeline.op("||")(cast(case.c.steps, JSONB)),
            )
            .execution_options(synchronize_session=False)
        )
    remedied = list(
        dict.fromkeys(d.event.alert_id for d in deliveries if d.event.state in FINAL_CASE_STATES)
    )
    for ids in statement_chunks(remedied):
        await session.execute(
            update(CustomerAlert)
            .where(CustomerAlert.alert_id.in_(ids))
            .values(resolution="remedied")
            .execution_options(synchronize_session=False)
        )


# A proof of destruction's review steps (issue 14): what the case waits for, the reason the
# customer sees, and the step on the timeline; the state stays as it is.


async def on_case_progressed(
    session: AsyncSession, event: ev.RemedyCaseProgressed, env: Envelope
) -> None:
    await session.execute(
        update(RemedyRequest)
        .where(RemedyRequest.request_id == event.request_id)
        .values(
            case_id=event.case_id,
            waiting_for=event.waiting_for,
            reason=event.reason,
            updated_at=event.occurred_at,
            timeline=RemedyRequest.timeline.op("||")(
                cast(literal(orjson.dumps([_timeline_entry(event)]).decode()), JSONB)
            ),
        )
    )


async def apply_case_events(
    session: AsyncSession,
    deliveries: Sequence[Delivery[ev.RemedyCaseTransitioned | ev.RemedyCaseProgressed]],
) -> None:
    """A run of a case's events in their order: consecutive transitions in one batch, each review
    step on its own (they are few)."""
    run: list[Delivery[ev.RemedyCaseTransitioned]] = []
    for d in deliveries:
        if isinstance(d.event, ev.RemedyCaseTransitioned):
            run.append(Delivery(d.event, d.envelope))  # typed by the narrowed event
            continue
        if run:
            await apply_case_transitions(session, run)
            run = []
        await on_case_progressed(session, d.event, d.envelope)
    if run:
        await apply_case_transitions(session, run)


# --------------------------------------------------------------------------- notices


def _notice_row(event: ev.NoticeSent | ev.NoticeFailed) -> dict[str, Any]:
    status, at = (
        ("sent", event.sent_at) if isinstance(event, ev.NoticeSent) else ("failed", event.failed_at)
    )
    return {
        "notice_id": event.notice_id,
        "alert_id": event.alert_id,
        "customer_id": event.customer_id,
        "kind": event.kind,
        "status": status,
        "at": at,
        "gift_recipient": event.gift_recipient,
    }


# The notices' columns as arrays, as the alerts': one statement of constant shape (compiled once).
_NOTICE_COLUMNS = (
    column("notice_id", String),
    column("alert_id", String),
    column("customer_id", String),
    column("kind", String),
    column("status", String),
    column("at", DateTime(timezone=True)),
    column("gift_recipient", Boolean),
)
_NOTICE_ARRAYS = (
    func.unnest(*(bindparam(c.name, type_=ARRAY(c.type)) for c in _NOTICE_COLUMNS))
    .table_valued(*_NOTICE_COLUMNS)
    .render_derived("notice_rows")
)
_NOTICE_INSERT = insert(cast_type(Table, SentNotice.__table__)).from_select(
    [c.name for c in _NOTICE_COLUMNS], select(*_NOTICE_ARRAYS.c)
)
UPSERT_NOTICES = _NOTICE_INSERT.on_conflict_do_update(
    index_elements=["notice_id"],
    set_={"status": _NOTICE_INSERT.excluded.status, "at": _NOTICE_INSERT.excluded.at},
)


async def _upsert_notices(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """``rows``: one per notice (a bulk upsert may touch a row only once)."""
    if rows:
        await session.execute(
            UPSERT_NOTICES, {c.name: [r[c.name] for r in rows] for c in _NOTICE_COLUMNS}
        )


async def on_notice_sent(session: AsyncSession, event: ev.NoticeSent, env: Envelope) -> None:
    await _upsert_notices(session, [_notice_row(event)])


async def on_notice_failed(session: AsyncSession, event: ev.NoticeFailed, env: Envelope) -> None:
    await _upsert_notices(session, [_notice_row(event)])


async def apply_notices(
    session: AsyncSession, deliveries: Sequence[Delivery[ev.NoticeSent | ev.NoticeFailed]]
) -> None:
    """A notice is inserted by its first event and each later one overwrites its status and time."""
    rows: dict[str, dict[str, Any]] = {}
    for d in deliveries:
        row = _notice_row(d.event)
        kept = rows.setdefault(row["notice_id"], row)
        kept.update(status=row["status"], at=row["at"])
    await _upsert_notices(session, list(rows.values()))


# --------------------------------------------------------------------------- registration

ALERT_STATES = batched(apply_alert_states)
NOTICES = batched(apply_notices)
CASE_EVENTS = batched(apply_case_events)

# One object per batch form: the runner hands a run of consecutive deliveries registered to the same
# object to its handle_many in one call (so raised and updated may interleave in one run).
HANDLERS: HandlerMap = {
    ev.AlertRaised: ALERT_STATES,
    ev.AlertUpdated: ALERT_STATES,
    ev.AlertWithdrawn: batched(apply_withdrawals),
    ev.AlertClosed: batched(apply_closures),
    ev.RemedyCaseTransitioned: CASE_EVENTS,
    ev.RemedyCaseProgressed: CASE_EVENTS,
    ev.NoticeSent: NOTICES,
    ev.NoticeFailed: NOTICES,
}
