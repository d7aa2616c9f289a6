"""refund-logistics' own metrics, read from its database when /metrics is scraped
(recall_shared.metrics.StateGauges)."""

from __future__ import annotations

from recall_shared.metrics import GaugeQuery
from refund_logistics.notice_states import REACHED

_REACHED_SQL = ", ".join(f"'{status}'" for status in REACHED)

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
    # Reach per recall, for open (active) recalls only: the label set stays as small as the recalls
    # in progress, and a closed recall's series go away (decision 0010). "Affected" and "notified"
    # count as the recall's report does (report.py): customers of its alerts not withdrawn, and
    # customers a notice reached (notice_states.REACHED). Per recall, its customers come in order
    # from the (recall_id, customer_id) indexes (migration 0005), so DISTINCT only skips repeats:
    # ~0.5 s for a million customers where count(DISTINCT) sorted them for 3-6 s
    # (bench/reach_gauge_cost.py).
    GaugeQuery(
        "recall_reach_customers",
        "Customers of each open recall: affected (their alert not withdrawn) and notified (a "
        "notice reached them: sent with no bounce, delivered or complained about).",
        f"""
        SELECT r.recall_id, m.measure, m.customers
        FROM recalls r CROSS JOIN LATERAL (
            SELECT 'affected' AS measure, count(*) AS customers FROM (
                SELECT DISTINCT a.customer_id FROM alerts a
                WHERE a.recall_id = r.recall_id AND a.status <> 'withdrawn') affected
            UNION ALL
            SELECT 'notified', count(*) FROM (
                SELECT DISTINCT n.customer_id FROM notices n
                WHERE n.recall_id = r.recall_id AND n.kind <> 'withdrawal'
                  AND n.status IN ({_REACHED_SQL})) notified
        ) m
        WHERE r.status = 'active'""",
        ("recall_id", "measure"),
        forget_gone=True,
    ),
)
