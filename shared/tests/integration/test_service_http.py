"""ServiceRuntime with install_common on a FastAPI app: health, readiness, metrics, correlation
ids."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel

from recall_shared import events as ev
from recall_shared.http import CORRELATION_HEADER, RuntimeDep, SessionDep, install_common
from recall_shared.service import ServiceRuntime
from recall_shared.testing import envelope_of, eventually, read_topic
from recall_shared.topics import ALERTS, dead_letter_topic

pytestmark = pytest.mark.integration


class Body(BaseModel):
    alert_id: str
    count: int


def build_app(runtime: ServiceRuntime) -> FastAPI:
    app = FastAPI()
    install_common(app, runtime)

    @app.post("/close")
    async def close(body: Body, session: SessionDep, rt: RuntimeDep) -> dict[str, str]:
        from datetime import UTC, datetime

        async with session.begin():
            eid = await rt.outbox.add(
                session,
                ev.AlertClosed(
                    alert_id=body.alert_id,
                    customer_id="cust-1",
                    recall_id="r",
                    closed_at=datetime.now(UTC),
                ),
            )
        return {"event_id": eid}

    return app


async def _client(runtime: ServiceRuntime) -> AsyncIterator[httpx.AsyncClient]:
    app = build_app(runtime)
    await runtime.start()
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://svc"
        ) as client:
            yield client
    finally:
        await runtime.stop()


async def test_health_ready_metrics_and_outbox_through_the_runtime(infra) -> None:
    await infra.create_topics(ALERTS, dead_letter_topic("recall-intake"))
    runtime = ServiceRuntime(infra.settings())
    runtime.add_consumer([ALERTS], {ev.AlertClosed: infra.inserting_handler})
    async for client in _client(runtime):
        health = await client.get("/healthz")
        assert health.status_code == 200 and health.json() == {
            "status": "ok",
            "service": "recall-intake",
        }

        ready = await client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json() == {
            "ready": True,
            "checks": {
                "database": "ok",
                "kafka": "ok",
                "background_tasks": "ok",
                "consumers": "ok",
            },
            "dead_letters": "none pending",
        }

        # A request writes an event through the outbox; the relay publishes it; the consumer applies
        # it, and the correlation id of the request travels with the event.
        resp = await client.post(
            "/close", json={"alert_id": "al-1", "count": 1}, headers={CORRELATION_HEADER: "req-123"}
        )
        assert resp.status_code == 200 and resp.headers[CORRELATION_HEADER] == "req-123"
        event_id = resp.json()["event_id"]

        async def applied(expected: str = event_id) -> bool:
            return await infra.applied_ids() == [expected]

        await eventually(applied, timeout=25)
        (record,) = await read_topic(infra.topic(ALERTS), count=1, timeout=10)
        env = envelope_of(record)
        assert env.id == event_id and env.correlation_id == "req-123"

        generated = await client.get("/healthz")
        assert len(generated.headers[CORRELATION_HEADER]) == 32  # a fresh one when none was given

        bad = await client.post("/close", json={"alert_id": "al-2"})
        assert bad.status_code == 422
        assert bad.json()["error"] == "validation_failed" and "count" in bad.json()["message"]

        metrics = (await client.get("/metrics")).text
        topic = infra.topic(ALERTS)
        assert (
            f'events_consumed_total{{event_type="alert.closed.v1",topic="{topic}"}} 1.0' in metrics
        )
        assert f'events_produced_total{{topic="{topic}"}} 1.0' in metrics
        assert 'http_requests_total{method="POST",route="/close",status="422"} 1.0' in metrics
        assert "events_dead_lettered_total" in metrics and "outbox_backlog" in metrics


async def test_readyz_names_the_database_when_it_is_missing(infra) -> None:
    missing = infra.database_url.rsplit("/", 1)[0] + "/no_such_database_for_readyz"
    runtime = ServiceRuntime(infra.settings(database_url=missing), run_relay=False)
    async for client in _client(runtime):
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        body = ready.json()
        assert body["ready"] is False
        assert body["checks"]["database"].startswith("unreachable:")
        assert "no_such_database_for_readyz" in body["checks"]["database"]
        assert body["checks"]["kafka"] == "ok"
        assert (await client.get("/healthz")).status_code == 200  # alive, just not ready
