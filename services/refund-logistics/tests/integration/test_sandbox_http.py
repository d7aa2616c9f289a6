"""The HTTP adapters against the sandbox app over real HTTP on 127.0.0.1 (uvicorn on a free port),
and the sandbox as its own process (``python -m refund_logistics.sandbox``)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import pytest
import uvicorn

from recall_shared.testing import eventually
from refund_logistics.carrier import HttpCarrier
from refund_logistics.payments import HttpPaymentProvider
from refund_logistics.sandbox import SandboxBehaviour, create_sandbox_app

pytestmark = [pytest.mark.integration]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.asynccontextmanager
async def serving(app) -> AsyncIterator[str]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    try:
        await eventually(lambda: asyncio.sleep(0, server.started), timeout=10, interval=0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def test_a_transient_503_is_retried_with_the_same_key_and_pays_once() -> None:
    # Every key's first attempt answers 503 after the refund was made (the answer is lost), with
    # latency.
    app = create_sandbox_app(
        SandboxBehaviour(latency_s=0.01, fail_first_attempts=1), api_key="sk_test"
    )
    async with serving(app) as url:
        provider = HttpPaymentProvider(url, "sk_test", backoff_s=0.01)
        carrier = HttpCarrier(url, "sk_test", backoff_s=0.01)
        try:
            refund = await provider.refund(
                idempotency_key="refund:case-1:line-1",
                amount=Decimal("39.98"),
                currency="EUR",
                reference="case-1",
                order_id="ord-1",
                line_id="line-1",
            )
            again = await provider.refund(
                idempotency_key="refund:case-1:line-1",
                amount=Decimal("39.98"),
                currency="EUR",
                reference="case-1",
                order_id="ord-1",
                line_id="line-1",
            )
            label = await carrier.issue_label(
                idempotency_key="label:case-2",
                reference="case-2",
                customer_id="cust",
                units=1,
                return_to="RLS returns centre",
                currency="EUR",
            )
            async with httpx.AsyncClient(base_url=url) as c:
                stats = (await c.get("/_sandbox/stats")).json()
                listed = (await c.get("/v1/refunds", params={"reference": "case-1"})).json()["data"]
        finally:
            await provider.aclose()
            await carrier.aclose()
    assert (
        again == refund
        and refund.amount == Decimal("39.98")
        and refund.method == "original_payment_method"
    )
    assert label.tracking_number.startswith("SBX")
    assert (
        stats["refunds"] == 1
        and stats["labels"] == 1
        and stats["failures"] == 2
        and stats["attempts"] == 5
    )
    assert stats["paid_total"] == "39.98" and len(listed) == 1


async def test_the_sandbox_runs_as_its_own_process() -> None:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "refund_logistics.sandbox",
        "--port",
        str(port),
        "--latency-ms",
        "0",
        "--jitter-ms",
        "0",
        "--failure-rate",
        "0",
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=os.environ.copy(),
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as c:

            async def up() -> bool:
                try:
                    return (await c.get("/healthz")).status_code == 200
                except httpx.TransportError:
                    return False

            await eventually(up, timeout=20, interval=0.1)
            r = await c.post(
                "/v1/refunds",
                json={"amount": "1.00", "currency": "EUR", "method": "original_payment_method"},
                headers={"Idempotency-Key": "k"},
            )
            assert r.status_code == 201
            assert (
                await c.post(
                    "/v1/refunds",
                    json={"amount": "1.00", "currency": "EUR"},
                    headers={"Idempotency-Key": "k"},
                )
            ).headers["Idempotent-Replayed"] == "true"
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), timeout=10)
