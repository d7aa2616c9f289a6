"""A notice's trace context. The alert event that queues a notice carries the recall's trace (the
CloudEvents ``ce_traceparent``); the notice row keeps it, and the SMTP send of the notice, which
runs later from the sender loop, is a span of that trace instead of a trace of its own.

Nothing is written when the events carry no trace context (tracing off upstream), so the bulk path
costs nothing then. A notice queued by no event (a reminder) has none and its send starts a trace.
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


def send_parent(row: Any) -> Context | None:
    """The context a claimed notice's send span continues (its row's ``traceparent`` and
    ``tracestate``), or None: the span then starts a trace."""
    return context_of({TRACEPARENT: row.traceparent or "", TRACESTATE: row.tracestate or ""})
