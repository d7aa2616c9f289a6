"""The row-level read path of the hot routes (GET /v1/me/banner and GET /v1/me/alerts).

The orders page asks for the banner on every view, so these routes skip what costs per request and
gives them nothing: the SQLAlchemy session (a pre-ping, BEGIN and ROLLBACK round trip around each
one-statement read, plus the ORM), validating each alert's stored state, and a response model. They
run the queries of :mod:`customer_api.queries` on a small asyncpg pool of their own and write the
JSON with orjson.
"""

from __future__ import annotations

import hashlib
from typing import Any

import asyncpg
import orjson

from recall_shared.read_pool import ReadPool

__all__ = ["APPLICATION_NAME", "ReadPool"]  # the pool is shared (recall_shared.read_pool)

APPLICATION_NAME = "customer-api-reads"
_JSON_OPTS = orjson.OPT_UTC_Z  # datetimes as pydantic writes them: ...Z


# ------------------------------------------------------------------ JSON of rows


def summary_of(row: asyncpg.Record) -> dict[str, Any]:
    """An AlertSummary (api.AlertSummary, same fields and order) from a row of
    queries.SUMMARY_COLUMNS."""
    return {
        "alert_id": row[0],
        "recall_id": row[1],
        "status": row[2],
        "resolution": row[3],
        "tier": row[4],
        "kind": row[5],
        "title": row[6],
        "severity": row[7],
        "hazard": row[8],
        "stop_using": row[9],
        "images": orjson.Fragment(row[10]),
        "units": row[11],
        "acknowledged": row[12],
        "created_at": row[13],
        "updated_at": row[14],
    }


def banner_json(row: asyncpg.Record | None) -> tuple[bytes, str]:
    """The banner's body and its ETag, from the row of queries.BANNER (None: no open alert)."""
    if row is None:
        tag_basis = "0"
        body: dict[str, Any] = {"open_alerts": 0, "most_severe": None}
    else:
        count = row["open_count"]
        tag_basis = (
            f"{count}:{row['alert_id']}:{row['alert_version']}:{row['updated_at'].isoformat()}"
        )
        body = {"open_alerts": count, "most_severe": summary_of(row)}
    etag = '"' + hashlib.sha256(tag_basis.encode()).hexdigest()[:32] + '"'
    return orjson.dumps(body, option=_JSON_OPTS), etag


def alert_page_json(rows: list[asyncpg.Record], next_cursor: str | None) -> bytes:
    """An AlertPage from rows of queries.ALERTS."""
    return orjson.dumps(
        {"items": [summary_of(r) for r in rows], "next_cursor": next_cursor}, option=_JSON_OPTS
    )
