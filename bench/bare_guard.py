"""The limit for bench/sellability_load.py: the checkout guard's lookup on raw asyncpg in the
smallest ASGI app (plain Starlette, no ORM, no validation model, no dependencies, no middleware).

It does the same database work as purchase-matcher's route and no more: the API key's hash looked up
in ``seller_keys`` (one query), the recalls naming the lines' identifiers with the service's own SQL
(``purchase_matcher.guard.RECALLS_NAMING``, snapshots validated once per version), and the same
verdict (``purchase_matcher.sellability.judge``, ``guard.answer_of``) written by orjson. It skips
the validation of the request (GTIN spellings, bounds, unknown fields): the bench sends only
GTIN-14s.

    BARE_DSN=postgresql://... BARE_PEPPER=... uvicorn bench.bare_guard:app --port 18907
"""

from __future__ import annotations

import os
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import asyncpg
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from purchase_matcher.guard import RECALLS_NAMING, SNAPSHOTS, answer_of
from purchase_matcher.sellability import SaleLine, judge, sale_identifiers
from recall_shared import events as ev
from recall_shared.auth import hash_api_key

KEY = "SELECT role FROM seller_keys WHERE key_hash = $1 AND revoked_at IS NULL"
_snapshots: dict[str, ev.RecallSnapshot] = {}


async def check(request: Request) -> Response:
    key = request.headers.get("x-api-key", "")
    body = orjson.loads(await request.body())
    lines = [SaleLine(**{k: v for k, v in line.items() if k != "ref"}) for line in body["lines"]]
    ids = sale_identifiers(lines)
    async with request.app.state.pool.acquire() as conn:
        role = await conn.fetchval(KEY, hash_api_key(key, os.environ["BARE_PEPPER"]))
        if role != "operator":
            return Response(status_code=401)
        found = await conn.fetch(RECALLS_NAMING, ids["product"], ids["gtin"], ids["model"])
        stale = [
            r["recall_id"]
            for r in found
            if (s := _snapshots.get(r["recall_id"])) is None or s.version != r["version"]
        ]
        if stale:
            for row in await conn.fetch(SNAPSHOTS, stale):
                _snapshots[row["recall_id"]] = ev.RecallSnapshot.model_validate_json(row[2])
    recalls = [_snapshots[r["recall_id"]] for r in found]
    now = datetime.now(UTC)
    out = [
        answer_of(i, line.get("ref"), judge(sale, recalls, now))
        for i, (line, sale) in enumerate(zip(body["lines"], lines, strict=True))
    ]
    payload = orjson.dumps({"checked_at": now, "lines": out}, option=orjson.OPT_UTC_Z)
    return Response(payload, media_type="application/json")


async def _no_reset(conn: asyncpg.Connection) -> None:
    pass


@asynccontextmanager
async def lifespan(app: Starlette):
    app.state.pool = await asyncpg.create_pool(
        os.environ["BARE_DSN"], min_size=5, max_size=10, reset=_no_reset
    )
    yield
    await app.state.pool.close()


app = Starlette(
    routes=[Route("/v1/sellability-checks", check, methods=["POST"])], lifespan=lifespan
)
