"""A notice's trace context. The alert event that queues a notice carries the recall's trace (the
CloudEvents ``ce_traceparent``); the notice row keeps it, and the SMTP send of the notice, which
runs later from the sender loop, is a span of that trace instead of a trace of its own.

Nothing is written when the events carry no trace context (tracing off upstream), so the bulk path
costs nothing then. A notice queued by no event keeps the trace of the notices it follows: a
fallback that of the notice that did not reach them (notifier.fallback), a reminder that of its
alert's first traced notice (:func:`continue_alert_traces`), so a recall's trace runs as long as
its reminder schedule (weeks). A remedy notice (the label, the refund) joins the trace of the case
transition that queued it. A notice with none starts a trace when sent.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from opentelemetry.context import Context
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from recall_shared.envelope import Envelope
from recall_shared.telemetry import TRACEPARENT, TRACESTATE, context_of

# The notices an event queued are those of its (alert, version) that have no context yet: an
# event is applied once (the inbox), so none of them came from another event.
_REMEMBER = text(
    """
    UPDATE notices n SET traceparent = v.traceparent, tracestate = v.tracestate
    FROM unnest(CAST(:alert_ids AS text[]), CAST(:versions AS int[]),
                CAST(:parents AS text[]), CAST(:states AS text[]))
         AS v(alert_id, alert_version, traceparent, tracestate)
    WHERE n.alert_id = v.alert_id AND n.alert_version = v.alert_version
      AND n.traceparent IS NULL
    """
)


async def remember_traces(
    session: AsyncSession, queued_by: Iterable[tuple[str, int, Envelope]]
) -> None:
    """Store on the notices of each (alert id, alert version) the trace context of the envelope
    of the event that queued them (inside that event's transaction)."""
    traced = [(a, v, env) for a, v, env in queued_by if env.traceparent]
    if not traced:
        return
    await session.execute(
        _REMEMBER,
        {
            "alert_ids": [a for a, _, _ in traced],
            "versions": [v for _, v, _ in traced],
            "parents": [env.traceparent for _, _, env in traced],
            "states": [env.tracestate for _, _, env in traced],
        },
    )


_REMEMBER_ONE = text(
    "UPDATE notices SET traceparent = :parent, tracestate = :state "
    "WHERE notice_id = :id AND traceparent IS NULL"
)


async def remember_trace(session: AsyncSession, notice_id: str, env: Envelope) -> None:
    """One notice's trace context from the event that queued it (a remedy case's transition:
    the notice joins the case's trace); a repeat of the event changes nothing."""
    if env.traceparent:
        await session.execute(
            _REMEMBER_ONE, {"id": notice_id, "parent": env.traceparent, "state": env.tracestate}
        )


# The reminders queued without a context (in this transaction: still pending or waiting) take that
# of their alert's first traced notice that is not a reminder (the initial notice, as a rule).
_CONTINUE = text(
    """
    UPDATE notices n SET traceparent = t.traceparent, tracestate = t.tracestate
    FROM (SELECT DISTINCT ON (alert_id) alert_id, traceparent, tracestate FROM notices
          WHERE alert_id = ANY(CAST(:alert_ids AS text[])) AND kind <> 'reminder'
            AND traceparent IS NOT NULL
          ORDER BY alert_id, created_at) t
    WHERE n.alert_id = t.alert_id AND n.kind = 'reminder' AND n.traceparent IS NULL
      AND n.status IN ('pending', 'waiting_contact')
    """
)


async def continue_alert_traces(session: AsyncSession, alert_ids: Iterable[str]) -> None:
    """Give the reminders just queued for these alerts their alert's trace context (inside the
    transaction that queued them); nothing when there are none."""
    ids = sorted(set(alert_ids))
    if ids:
        await session.execute(_CONTINUE, {"alert_ids": ids})


def send_parent(row: Any) -> Context | None:
    """The context a claimed notice's send span continues (its row's ``traceparent`` and
    ``tracestate``), or None: the span then starts a trace."""
    return context_of({TRACEPARENT: row.traceparent or "", TRACESTATE: row.tracestate or ""})
