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
)
from refund_logistics.models import KnownRecall

REMEDIES = ("refund_with_return", "refund_on_destruction", "replacement", "repair")


async def _one(session: AsyncSession, sql: str, **params: Any) -> Any:
    return (await session.execute(text(sql), params)).one()


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
    notified, delivered, notified_period, delivered_period, notices_period = await _one(
        session,
        """
        SELECT count(DISTINCT customer_id),
               count(DISTINCT customer_id) FILTER (WHERE status = 'sent'),
               count(DISTINCT customer_id) FILTER (WHERE at >= :start AND at < :end),
               count(DISTINCT customer_id)
                   FILTER (WHERE status = 'sent' AND at >= :start AND at < :end),
               count(*) FILTER (WHERE status = 'sent' AND at >= :start AND at < :end)
        FROM notices WHERE recall_id = :r AND kind <> 'withdrawal'""",
        **p,
    )
    # Per channel (email today; SMS and letters as the notifier adds them), from the notices held.
    by_channel = {
        channel: {
            "customers_notified": int(n),
            "customers_delivered": int(d),
            "customers_failed_only": int(n) - int(d),
        }
        for channel, n, d in (
            await session.execute(
                text("""
        SELECT channel, count(DISTINCT customer_id),
               count(DISTINCT customer_id) FILTER (WHERE status = 'sent')
        FROM notices WHERE recall_id = :r AND kind <> 'withdrawal'
        GROUP BY channel ORDER BY channel"""),
                p,
            )
        ).all()
    }
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
        "customers_notified": int(notified),
        "customers_delivered": int(delivered),
        "customers_notified_period": int(notified_period),
        "customers_delivered_period": int(delivered_period),
        "notices_sent_period": int(notices_period),
        # Customers whose every notice failed (no address accepted it): told of nothing.
        "customers_notice_failed": int(notified) - int(delivered),
        "notices_by_channel": by_channel
        or {
            "email": {"customers_notified": 0, "customers_delivered": 0, "customers_failed_only": 0}
        },
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
        "customers_notice_failed_to_date": report["customers_notice_failed"],
        "customers_contacted_by_channel": "; ".join(
            f"{channel}={c['customers_delivered']}"
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
    }


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
