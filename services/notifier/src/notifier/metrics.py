"""The notifier's own metrics, read from its database when /metrics is scraped
(recall_shared.metrics.StateGauges)."""

from __future__ import annotations

from recall_shared.metrics import GaugeQuery

STATE_GAUGES = (
    GaugeQuery(
        "notices",
        "Notices by status (waiting_contact, pending, sending, sent, failed, in_doubt, cancelled).",
        "SELECT status, count(*) FROM notices GROUP BY status",
        ("status",),
    ),
    GaugeQuery(
        "unreachable_customers",
        "Recipients with a notice waiting for a contact address (none known yet).",
        "SELECT count(DISTINCT recipient_customer_id) FROM notices "
        "WHERE status = 'waiting_contact'",
    ),
)
