"""A recall's effectiveness report and its export in the shape of CPSC's monthly progress report."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from refund_logistics.domain import (
    COMPLETED_STATES,
    COMPLETING_TRANSITIONS,
    Period,
    correction_rate,
    incidents_before_and_after,
)
from refund_logistics.models import KnownRecall
from refund_logistics.notice_states import CONFIRMED, REACHED

REMEDIES = ("refund_with_return", "refund_on_destruction", "replacement", "repair")


async def _one(session: AsyncSession, sql: str, **params: Any) -> Any:
    return (await session.execute(text(sql), params)).one()


# Reach (RLS.md): per customer, over the recall's notices but withdrawal notices. "Notified" is a
# notice that reached them (notice_states.REACHED: never a bounced or failed one), "delivered" one
# confirmed by their mail system; "bounced": a bounce and nothing that reached them.
_REACH = """
    SELECT count(DISTINCT customer_id),
           count(DISTINCT customer_id) FILTER (WHERE status = ANY(:reached)),
           count(DISTINCT customer_id) FILTER (WHERE status = ANY(:confirmed)),
           count(DISTINCT customer_id)
               FILTER (WHERE status = ANY(:reached) AND at >= :start AND at < :end),
           count(DISTINCT customer_id)
               FILTER (WHERE status = ANY(:confirmed) AND at >= :start AND at < :end),
           count(*) FILTER (WHERE status <> 'failed' AND at >= :start AND at < :end),
           (SELECT count(*) FROM (
               SELECT 1 FROM notices WHERE recall_id = :r AND kind <> 'withdrawal'
               GROUP BY customer_id
               HAVING bool_or(status = 'bounced') AND NOT bool_or(status = ANY(:reached))) b)
    FROM notices WHERE recall_id = :r AND kind <> 'withdrawal'"""
# Customers of the recall's alerts (not withdrawn) no notice has reached (yet): pending, waiting for
# an address, failed or bounced on every channel (the notifier's unreachable queue says which).
_NOT_REACHED = """
    SELECT count(DISTINCT a.customer_id) FROM alerts a
    WHERE a.recall_id = :r AND a.status <> 'withdrawn' AND NOT EXISTS (
        SELECT 1 FROM notices n WHERE n.recall_id = :r AND n.customer_id = a.customer_id
          AND n.kind <> 'withdrawal' AND n.status = ANY(:reached))"""
# Per channel the notices went on; "failed only": every notice of the customer's on it failed.
_REACH_BY_CHANNEL = """
    SELECT channel, count(DISTINCT customer_id),
           count(DISTINCT customer_id) FILTER (WHERE status = ANY(:reached)),
           count(DISTINCT customer_id) FILTER (WHERE status = ANY(:confirmed)),
           count(DISTINCT customer_id) FILTER (WHERE status = 'bounced'),
           count(DISTINCT customer_id) FILTER (WHERE failed_only)
    FROM (SELECT channel, customer_id, status,
                 bool_and(status = 'failed') OVER (PARTITION BY channel, customer_id) AS failed_only
          FROM notices WHERE recall_id = :r AND kind <> 'withdrawal') n
    GROUP BY channel ORDER BY channel"""
_CHANNEL_COUNTS = (
    "customers_attempted",
    "customers_notified",
    "customers_delivered",
    "customers_bounced",
    "customers_failed_only",
)
# Customers attempted whose every notice failed (no address accepted one; a bounced one was
# accepted, and counts in customers_bounced): with notified and bounced, all the attempted.
# Notices themselves (not customers), but withdrawal notices: delivered (confirmed) vs bounced, to
# date and by the time of that report in the period.
_NOTICE_OUTCOMES = """
    SELECT count(*) FILTER (WHERE status = ANY(:confirmed)),
           count(*) FILTER (WHERE status = 'bounced'),
           count(*) FILTER (WHERE status = ANY(:confirmed) AND at >= :start AND at < :end),
           count(*) FILTER (WHERE status = 'bounced' AND at >= :start AND at < :end)
    FROM notices WHERE recall_id = :r AND kind <> 'withdrawal'"""
# Customers of the recall's alerts (not withdrawn) who opened their alert page (alert.viewed.v1,
# first-party: no pixel), to date and first in the period.
_VIEWED = """
    SELECT count(DISTINCT v.customer_id),
           count(DISTINCT v.customer_id) FILTER (WHERE v.viewed_at >= :start AND v.viewed_at < :end)
    FROM alert_views v JOIN alerts a ON a.alert_id = v.alert_id
    WHERE v.recall_id = :r AND a.status <> 'withdrawn'"""
_NOTICE_FAILED = """
    SELECT count(*) FROM (
        SELECT 1 FROM notices WHERE recall_id = :r AND kind <> 'withdrawal'
        GROUP BY customer_id HAVING bool_and(status = 'failed')) f"""


async def effectiveness(
    session: AsyncSession, recall: KnownRecall, period: Period
) -> dict[str, Any]:
    p = {"r": recall.recall_id, "start": period.start, "end": period.end}
    units_affected, alerts_open, customers_affected = await _one(
        session,
        """
        SELECT coalesce(sum(units), 0), count(*), count(DISTINCT customer_id)
        FROM alerts WHERE recall_id = :r AND status <> 'withdrawn'""",
        **p,
    )
    (alerts_withdrawn,) = await _one(
        session, "SELECT count(*) FROM alerts WHERE recall_id = :r AND status = 'withdrawn'", **p
    )
    reach = {"reached": list(REACHED), "confirmed": list(CONFIRMED)}
    by_channel: dict[str, dict[str, int]] = {}
    for channel, attempted_c, notified_c, delivered_c, bounced_c, failed_only_c in (
        await session.execute(text(_REACH_BY_CHANNEL), {**p, **reach})
    ).all():
        by_channel[channel] = {
            "customers_attempted": int(attempted_c),
            "customers_notified": int(notified_c),
            "customers_delivered": int(delivered_c),
            "customers_bounced": int(bounced_c),
            "customers_failed_only": int(failed_only_c),
        }
    (
        attempted,
        notified,
        delivered,
        notified_period,
        delivered_period,
        notices_period,
        bounced,
    ) = await _one(session, _REACH, **p, **reach)
    (not_reached,) = await _one(session, _NOT_REACHED, **p, **reach)
    (notice_failed,) = await _one(session, _NOTICE_FAILED, **p)
    viewed, viewed_period = await _one(session, _VIEWED, **p)
    delivered_n, bounced_n, delivered_n_period, bounced_n_period = await _one(
        session, _NOTICE_OUTCOMES, **p, **reach
    )
    responded, responded_period = await _one(
        session,
        """
        SELECT count(DISTINCT customer_id),
               count(DISTINCT customer_id) FILTER (WHERE at >= :start AND at < :end) FROM (
            SELECT customer_id, created_at AS at FROM cases WHERE recall_id = :r
            UNION ALL SELECT customer_id, declared_at AS at FROM not_affected WHERE recall_id = :r
        ) AS answers""",
        **p,
    )
    (not_affected,) = await _one(
        session, "SELECT count(DISTINCT customer_id) FROM not_affected WHERE recall_id = :r", **p
    )
    (requested,) = await _one(
        session, "SELECT count(DISTINCT customer_id) FROM cases WHERE recall_id = :r", **p
    )

    remedies: dict[str, dict[str, int]] = {
        r: {
            "chosen": 0,
            "completed": 0,
            "in_progress": 0,
            "referred_to_seller": 0,
            "rejected": 0,
            "units_corrected_period": 0,
            "units_corrected_total": 0,
        }
        for r in REMEDIES
    }
    completed_states = tuple(sorted(COMPLETED_STATES))
    rows = (
        await session.execute(
            text("""
        SELECT remedy, count(*),
               count(*) FILTER (WHERE state = ANY(:done)),
               count(*) FILTER (WHERE state = 'referred_to_seller'),
               count(*) FILTER (WHERE state = 'rejected')
        FROM cases WHERE recall_id = :r GROUP BY remedy"""),
            {**p, "done": list(completed_states)},
        )
    ).all()
    for remedy, chosen, done, referred, rejected in rows:
        remedies[remedy].update(
            chosen=chosen,
            completed=done,
            referred_to_seller=referred,
            rejected=rejected,
            in_progress=chosen - done - referred - rejected,
        )
    corrected = (
        await session.execute(
            text("""
        SELECT c.remedy, coalesce(sum(c.units), 0),
               coalesce(sum(c.units) FILTER (WHERE t.at >= :start AND t.at < :end), 0)
        FROM case_transitions t JOIN cases c ON c.case_id = t.case_id
        WHERE c.recall_id = :r AND t.transition = ANY(:completing) GROUP BY c.remedy"""),
            {**p, "completing": sorted(COMPLETING_TRANSITIONS)},
        )
    ).all()
    for remedy, total, in_period in corrected:
        remedies[remedy]["units_corrected_total"] = int(total)
        remedies[remedy]["units_corrected_period"] = int(in_period)
    units_total = sum(r["units_corrected_total"] for r in remedies.values())
    units_period = sum(r["units_corrected_period"] for r in remedies.values())

    refunds = (
        await session.execute(
            text("""
        SELECT r.currency, count(*), sum(r.amount),
               count(*) FILTER (WHERE r.paid_at >= :start AND r.paid_at < :end),
               coalesce(sum(r.amount) FILTER (WHERE r.paid_at >= :start AND r.paid_at < :end), 0)
        FROM refunds r JOIN cases c ON c.case_id = r.case_id
        WHERE c.recall_id = :r AND r.status = 'paid'
        GROUP BY r.currency ORDER BY sum(r.amount) DESC"""),
            p,
        )
    ).all()
    billed = (
        await session.execute(
            text("""
        SELECT l.kind, l.currency, sum(l.amount)
        FROM seller_ledger l JOIN cases c ON c.case_id = l.case_id
        WHERE c.recall_id = :r GROUP BY l.kind, l.currency ORDER BY l.kind, l.currency"""),
            p,
        )
    ).all()

    return {
        "recall_id": recall.recall_id,
        "title": recall.title,
        "seller_id": recall.seller_id,
        "regulator_number": recall.regulator_number,
        "recall_status": recall.status,
        "period": str(period),
        "period_start": period.start.date().isoformat(),
        "period_end": (period.end.date()).isoformat(),
        "generated_at": datetime.now(UTC).isoformat(),
        "units_affected": int(units_affected),
        "alerts_open": int(alerts_open),
        "alerts_withdrawn": int(alerts_withdrawn),
        "customers_affected": int(customers_affected),
        "customers_attempted": int(attempted),
        "customers_notified": int(notified),
        "customers_delivered": int(delivered),
        "customers_bounced": int(bounced),
        "customers_not_reached": int(not_reached),
        "customers_notified_period": int(notified_period),
        "customers_delivered_period": int(delivered_period),
        "notices_sent_period": int(notices_period),
        # Customers whose every notice failed (no address accepted one): told of nothing.
        "customers_notice_failed": int(notice_failed),
        "notices_by_channel": by_channel or {"email": dict.fromkeys(_CHANNEL_COUNTS, 0)},
        "notices_delivered": {"period": int(delivered_n_period), "total": int(delivered_n)},
        "notices_bounced": {"period": int(bounced_n_period), "total": int(bounced_n)},
        "incidents": incidents_before_and_after(
            recall.incidents_at_publication, recall.incidents_reported
        ),
        "injuries": incidents_before_and_after(
            recall.injuries_at_publication, recall.injuries_reported
        ),
        "customers_viewed": int(viewed),
        "customers_viewed_period": int(viewed_period),
        "customers_responded": int(responded),
        "customers_responded_period": int(responded_period),
        "customers_requested_remedy": int(requested),
        "customers_not_affected": int(not_affected),
        "remedies": remedies,
        "units_corrected": {"period": units_period, "total": units_total},
        "units_uncorrected": max(int(units_affected) - units_total, 0),
        "correction_rate_pct": str(correction_rate(units_total, int(units_affected))),
        "refunds_paid": [
            {
                "currency": cur,
                "count": int(n),
                "amount": str(Decimal(amt).quantize(Decimal("0.01"))),
                "count_period": int(n_p),
                "amount_period": str(Decimal(amt_p).quantize(Decimal("0.01"))),
            }
            for cur, n, amt, n_p, amt_p in refunds
        ],
        "seller_billed": [
            {"kind": k, "currency": cur, "amount": str(Decimal(a).quantize(Decimal("0.01")))}
            for k, cur, a in billed
        ],
    }


# CPSC monthly progress report: one row per recall and reporting month. Column meanings: RLS.md.
CPSC_COLUMNS = (
    "recall_id",
    "regulator_recall_number",
    "firm_id",
    "product",
    "reporting_period",
    "period_start",
    "period_end",
    "units_affected",
    "customers_identified",
    "customers_notified_direct_period",
    "customers_notified_direct_to_date",
    "customers_notice_delivered_period",
    "customers_notice_delivered_to_date",
    "customers_notice_bounced_to_date",
    "customers_notice_failed_to_date",
    "customers_contacted_by_channel",
    "notices_email_sent_period",
    "customers_responded_period",
    "customers_responded_to_date",
    "customers_not_affected_to_date",
    "units_corrected_period",
    "units_corrected_to_date",
    "units_refunded_with_return_to_date",
    "units_refunded_on_destruction_to_date",
    "units_replaced_to_date",
    "units_repaired_to_date",
    "units_uncorrected",
    "correction_rate_pct",
    "refunds_paid_period",
    "refunds_paid_to_date",
    "currency",
    # Added for issue 14, at the end so existing readers keep their columns.
    "notices_delivered_period",
    "notices_delivered_to_date",
    "notices_bounced_period",
    "notices_bounced_to_date",
    "units_refunded_with_return_period",
    "units_refunded_on_destruction_period",
    "units_replaced_period",
    "units_repaired_period",
    "incidents_before_recall",
    "incidents_since_recall",
    "injuries_before_recall",
    "injuries_since_recall",
    # Added for issue 15: customers who opened their alert page (first-party, no pixel).
    "customers_viewed_period",
    "customers_viewed_to_date",
)


def cpsc_row(report: dict[str, Any]) -> dict[str, Any]:
    rem = report["remedies"]
    main = (
        report["refunds_paid"][0]
        if report["refunds_paid"]
        else {"amount": "0.00", "amount_period": "0.00", "currency": ""}
    )
    return {
        "recall_id": report["recall_id"],
        "regulator_recall_number": report["regulator_number"] or "",
        "firm_id": report["seller_id"] or "",
        "product": report["title"],
        "reporting_period": report["period"],
        "period_start": report["period_start"],
        "period_end": report["period_end"],
        "units_affected": report["units_affected"],
        "customers_identified": report["customers_affected"],
        "customers_notified_direct_period": report["customers_notified_period"],
        "customers_notified_direct_to_date": report["customers_notified"],
        "customers_notice_delivered_period": report["customers_delivered_period"],
        "customers_notice_delivered_to_date": report["customers_delivered"],
        "customers_notice_bounced_to_date": report["customers_bounced"],
        "customers_notice_failed_to_date": report["customers_notice_failed"],
        "customers_contacted_by_channel": "; ".join(
            f"{channel}={c['customers_notified']}"
            for channel, c in report["notices_by_channel"].items()
        ),
        "notices_email_sent_period": report["notices_sent_period"],
        "customers_responded_period": report["customers_responded_period"],
        "customers_responded_to_date": report["customers_responded"],
        "customers_not_affected_to_date": report["customers_not_affected"],
        "units_corrected_period": report["units_corrected"]["period"],
        "units_corrected_to_date": report["units_corrected"]["total"],
        "units_refunded_with_return_to_date": rem["refund_with_return"]["units_corrected_total"],
        "units_refunded_on_destruction_to_date": rem["refund_on_destruction"][
            "units_corrected_total"
        ],
        "units_replaced_to_date": rem["replacement"]["units_corrected_total"],
        "units_repaired_to_date": rem["repair"]["units_corrected_total"],
        "units_uncorrected": report["units_uncorrected"],
        "correction_rate_pct": report["correction_rate_pct"],
        "refunds_paid_period": main["amount_period"],
        "refunds_paid_to_date": main["amount"],
        "currency": main["currency"],
        "notices_delivered_period": report["notices_delivered"]["period"],
        "notices_delivered_to_date": report["notices_delivered"]["total"],
        "notices_bounced_period": report["notices_bounced"]["period"],
        "notices_bounced_to_date": report["notices_bounced"]["total"],
        "units_refunded_with_return_period": rem["refund_with_return"]["units_corrected_period"],
        "units_refunded_on_destruction_period": rem["refund_on_destruction"][
            "units_corrected_period"
        ],
        "units_replaced_period": rem["replacement"]["units_corrected_period"],
        "units_repaired_period": rem["repair"]["units_corrected_period"],
        # an empty cell where the recall never stated a count (unknown is not zero)
        "incidents_before_recall": _known(report["incidents"]["before_recall"]),
        "incidents_since_recall": _known(report["incidents"]["since_recall"]),
        "injuries_before_recall": _known(report["injuries"]["before_recall"]),
        "injuries_since_recall": _known(report["injuries"]["since_recall"]),
        "customers_viewed_period": report["customers_viewed_period"],
        "customers_viewed_to_date": report["customers_viewed"],
    }


def _known(count: int | None) -> int | str:
    return "" if count is None else count


def _cell(value: Any) -> Any:
    """Seller-written text must not become a spreadsheet formula (CSV injection)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def cpsc_csv(row: dict[str, Any]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CPSC_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    writer.writerow({k: _cell(v) for k, v in row.items()})
    return buf.getvalue()
