"""The limit for bench/customer_api_load.py: the banner and alert-list queries on raw asyncpg, with
the same JWT check, in the smallest ASGI app (plain Starlette, no ORM, no dependencies, no
middleware). The SQL is customer-api's own (customer_api.queries), so both sides do the same
database work.

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

from customer_api.queries import ALERTS as ALERT_PAGES
from customer_api.queries import BANNER

ALERTS = ALERT_PAGES["all", False]  # the first page, 20 alerts (+1 to know whether there is a next)


def _customer(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    try:
        return jwt.decode(auth[7:], os.environ["BARE_JWT_SECRET"], algorithms=["HS256"])["sub"]
    except Exception:
        return None


async def banner(request: Request) -> Response:
    customer = _customer(request)
    if customer is None:
        return Response(status_code=401)
    async with request.app.state.pool.acquire() as conn:
        top = await conn.fetchrow(BANNER, customer)
    body = {
        "open_alerts": 0 if top is None else top["open_count"],
        "most_severe": None if top is None else dict(top),
    }
    return Response(orjson.dumps(body), media_type="application/json")


async def alerts(request: Request) -> Response:
    customer = _customer(request)
    if customer is None:
        return Response(status_code=401)
    async with request.app.state.pool.acquire() as conn:
        rows = await conn.fetch(ALERTS, customer, 21)
    body = {"items": [dict(r) for r in rows[:20]]}
    return Response(orjson.dumps(body), media_type="application/json")


async def _no_reset(conn: asyncpg.Connection) -> None:
    pass


@asynccontextmanager
async def lifespan(app: Starlette):
    # As customer-api's read pool (customer_api.reads): no reset query on release (fixed read-only
    # statements).
    app.state.pool = await asyncpg.create_pool(
        os.environ["BARE_DSN"], min_size=5, max_size=10, reset=_no_reset
    )
    yield
    await app.state.pool.close()


app = Starlette(
    routes=[Route("/v1/me/banner", banner), Route("/v1/me/alerts", alerts)], lifespan=lifespan
)
