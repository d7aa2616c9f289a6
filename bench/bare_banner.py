"""The limit for bench/customer_api_load.py: the banner and alert-list queries on raw asyncpg, with the
same JWT check, in the smallest ASGI app (plain Starlette, no ORM, no dependencies, no middleware).

    BARE_DSN=postgresql://... BARE_JWT_SECRET=... uvicorn bench.bare_banner:app --port 18906
"""

from __future__ import annotations

import os
from contextlib import asynccontextmanager

import asyncpg
import jwt
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

BANNER_COUNT = ("SELECT count(*) FROM alerts WHERE customer_id = $1 AND status = 'open' AND resolution IS NULL")
BANNER_TOP = ("SELECT alert_id, alert_version, state FROM alerts WHERE customer_id = $1 AND status = 'open' "
              "AND resolution IS NULL ORDER BY severity_rank, created_at DESC LIMIT 1")
ALERTS = ("SELECT alert_id, status, state, created_at FROM alerts WHERE customer_id = $1 "
          "ORDER BY created_at DESC, alert_id DESC LIMIT 21")


def _customer(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    try:
        return jwt.decode(auth[7:], os.environ["BARE_JWT_SECRET"], algorithms=["HS256"])["sub"]
    except Exception:  # noqa: BLE001
        return None


async def banner(request: Request) -> Response:
    customer = _customer(request)
    if customer is None:
        return Response(status_code=401)
    async with request.app.state.pool.acquire() as conn:
        count = await conn.fetchval(BANNER_COUNT, customer)
        top = await conn.fetchrow(BANNER_TOP, customer)
    body = {"open_alerts": count, "most_severe": None if top is None else {"alert_id": top["alert_id"], "state": top["state"]}}
    return Response(orjson.dumps(body), media_type="application/json")


async def alerts(request: Request) -> Response:
    customer = _customer(request)
    if customer is None:
        return Response(status_code=401)
    async with request.app.state.pool.acquire() as conn:
        rows = await conn.fetch(ALERTS, customer)
    body = {"items": [{"alert_id": r["alert_id"], "status": r["status"], "state": r["state"]} for r in rows[:20]]}
    return Response(orjson.dumps(body), media_type="application/json")


@asynccontextmanager
async def lifespan(app: Starlette):  # type: ignore[no-untyped-def]
    app.state.pool = await asyncpg.create_pool(os.environ["BARE_DSN"], min_size=5, max_size=10)
    yield
    await app.state.pool.close()


app = Starlette(routes=[Route("/v1/me/banner", banner), Route("/v1/me/alerts", alerts)], lifespan=lifespan)
