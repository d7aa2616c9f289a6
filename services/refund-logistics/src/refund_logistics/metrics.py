"""refund-logistics' own metrics, read from its database when /metrics is scraped
(recall_shared.metrics.StateGauges)."""

from __future__ import annotations

from recall_shared.metrics import GaugeQuery

STATE_GAUGES = (
    GaugeQuery(
        "remedy_cases",
        "Remedy cases by state.",
        "SELECT state, count(*) FROM cases GROUP BY state",
        ("state",),
    ),
    GaugeQuery(
        "refunds",
        "Refunds by status (pending, paid, failed): how many.",
        "SELECT status, currency, count(*) FROM refunds GROUP BY status, currency",
        ("status", "currency"),
    ),
    GaugeQuery(
        "refunds_amount",
        "Refunds by status: the sum of their amounts, in the currency's units.",
        "SELECT status, currency, sum(amount) FROM refunds GROUP BY status, currency",
        ("status", "currency"),
    ),
    GaugeQuery(
        "refunds_pending_oldest_age_seconds",
        "Age of the oldest refund written as an intent and not yet paid (0 when none is).",
        "SELECT coalesce(extract(epoch FROM now() - min(created_at)), 0) FROM refunds "
        "WHERE status = 'pending'",
    ),
)
