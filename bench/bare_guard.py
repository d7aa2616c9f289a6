"""The limit for bench/sellability_load.py: the checkout guard's lookup in the smallest ASGI app
(plain Starlette, no FastAPI, no validation model, no dependencies, no middleware).

It does the same work per check as purchase-matcher's route and no more: the API key's hash looked
up in the guard's own index (``purchase_matcher.guard_index.GuardIndex``, refreshed from the same
tables on a ``ReadPool`` at the same interval), the recalls naming the lines' identifiers from that
index, and the same verdict (``purchase_matcher.sellability.judge``, ``guard.answer_of``) written by
orjson. It skips what the service adds around it: the validation of the request (GTIN spellings,
bounds, unknown fields: the bench sends only GTIN-14s), the input guard, rate limits, correlation
ids, metrics and the access log, and the fall-back to the tables while the index is not current
(it answers 503 then; the bench warms up first).

    BARE_DSN=postgresql://... BARE_PEPPER=... uvicorn bench.bare_guard:app --port 18907
"""

from __future__ import annotations

import asyncio
import os
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from purchase_matcher.guard import answer_of
from purchase_matcher.guard_index import GuardIndex
from purchase_matcher.sellability import SaleLine, judge
from purchase_matcher.settings import Settings
from recall_shared.auth import hash_api_key
from recall_shared.read_pool import ReadPool

PEPPER = os.environ.get("BARE_PEPPER", "")


async def check(request: Request) -> Response:
    state = request.app.state.index.fresh_state()
    if state is None:
        return Response(status_code=503)
    if hash_api_key(request.headers.get("x-api-key", ""), PEPPER) not in state.operator_keys:
        return Response(status_code=401)
    body = orjson.loads(await request.body())
    lines = [SaleLine(**{k: v for k, v in line.items() if k != "ref"}) for line in body["lines"]]
    recalls = state.recalls_naming(lines)
    now = datetime.now(UTC)
    out = [
        answer_of(i, line.get("ref"), judge(sale, recalls, now))
        for i, (line, sale) in enumerate(zip(body["lines"], lines, strict=True))
    ]
    payload = orjson.dumps({"checked_at": now, "lines": out}, option=orjson.OPT_UTC_Z)
    return Response(payload, media_type="application/json")


@asynccontextmanager
async def lifespan(app: Starlette):
    defaults = Settings.model_fields
    pool = ReadPool(os.environ["BARE_DSN"], "bench-bare-guard")
    app.state.index = index = GuardIndex(
        pool,
        refresh_s=defaults["guard_index_refresh_s"].default,
        max_age_s=defaults["guard_index_max_age_s"].default,
    )
    no_runtime: Any = None  # the pool's task takes the service's runtime and does not use it
    tasks = [asyncio.create_task(pool.run(no_runtime)), asyncio.create_task(index.run(None))]
    yield
    index.stop()
    pool.stop()
    await asyncio.gather(*tasks, return_exceptions=True)


app = Starlette(
    routes=[Route("/v1/sellability-checks", check, methods=["POST"])], lifespan=lifespan
)
