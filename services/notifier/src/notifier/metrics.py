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
        "notices_reported",
        "Notices by channel and what the provider reported back once sent (delivered, bounced, "
        "complained; unreported while nothing came back), with the bounce type (hard, soft).",
        "SELECT channel, coalesce(delivery, 'unreported'), coalesce(bounce_type, ''), count(*) "
        "FROM notices WHERE status = 'sent' OR delivery IS NOT NULL GROUP BY 1, 2, 3",
        ("channel", "delivery", "bounce_type"),
    ),
)
