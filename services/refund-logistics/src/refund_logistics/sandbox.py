"""A local stand-in for the payment provider and the carrier, speaking their HTTP contracts
(RLS.md).

It behaves like the real parties where it matters to us: it takes time (latency with jitter), it
fails now and then with a transient ``503`` (a configurable, seedable rate; a failure may come
*after* the effect is recorded, as when a response is lost), and it keeps its own idempotency store,
so a request repeated with the same ``Idempotency-Key`` answers the original result instead of
paying or printing twice.

The idempotency store is an in-memory dict per process (restarting the sandbox forgets it, as a test
double may); requests with the same key are serialised by a per-key lock, so concurrent repeats wait
for the first and get its answer.

Two ways to use it:
- over HTTP: ``python -m refund_logistics.sandbox --port 8091`` (``create_sandbox_app``), with the
  HTTP adapters pointed at it (``REFUND_LOGISTICS_PAYMENT_PROVIDER=http``, ``..._CARRIER=http``);
- in process: :class:`refund_logistics.payments.SandboxPaymentProvider` and
  :class:`refund_logistics.carrier.SandboxCarrier` run the same :class:`SandboxCore` without a
  socket.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import FastAPI, Header, Request
from fastapi.responses import JSONResponse

ORIGINAL_PAYMENT_METHOD = "original_payment_method"


@dataclass
class SandboxBehaviour:
    latency_s: float = 0.0
    latency_jitter_s: float = 0.0
    failure_rate: float = 0.0  # chance that a request answers 503
    failure_after_effect: float = (
        0.5  # share of those failures that happen after the effect is recorded
    )
    fail_first_attempts: int = (
        0  # deterministic: the first N attempts of every key answer 503 (after the effect)
    )
    seed: int | None = None


class SandboxTransientError(Exception):
    """The sandbox's 503."""


class SandboxRejected(Exception):
    """The sandbox's 4xx: a request it will never accept."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code = status, code


@dataclass
class SandboxCore:
    """Latency, transient failures and the idempotency store, shared by the HTTP app and in-process
    fakes."""

    behaviour: SandboxBehaviour = field(default_factory=SandboxBehaviour)
    store: dict[str, dict[str, Any]] = field(
        default_factory=dict
    )  # "{kind}:{key}" -> the original answer
    attempts: Counter[str] = field(default_factory=Counter)
    effects: Counter[str] = field(
        default_factory=Counter
    )  # how many refunds/labels were really made
    failures: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.behaviour.seed)
        self._locks: dict[str, asyncio.Lock] = {}

    async def _latency(self) -> None:
        b = self.behaviour
        delay = b.latency_s + (
            self.rng.uniform(0, b.latency_jitter_s) if b.latency_jitter_s else 0.0
        )
        if delay > 0:
            await asyncio.sleep(delay)

    async def execute(
        self, kind: str, key: str, create: Callable[[], dict[str, Any]]
    ) -> tuple[dict[str, Any], bool]:
        """Run ``create`` once per (kind, key); returns (answer, replayed). May raise
        SandboxTransientError before or after the effect, and SandboxRejected from ``create``."""
        await self._latency()
        store_key = f"{kind}:{key}"
        lock = self._locks.setdefault(store_key, asyncio.Lock())
        async with lock:
            self.attempts[store_key] += 1
            b = self.behaviour
            forced = self.attempts[store_key] <= b.fail_first_attempts
            fail = forced or (b.failure_rate > 0 and self.rng.random() < b.failure_rate)
            after = forced or (fail and self.rng.random() < b.failure_after_effect)
            if fail and not after:
                self.failures += 1
                raise SandboxTransientError("sandbox: temporarily unavailable (before the effect)")
            replayed = store_key in self.store
            if not replayed:
                self.store[store_key] = create()
                self.effects[kind] += 1
            if fail:
                self.failures += 1
                raise SandboxTransientError(
                    "sandbox: temporarily unavailable (after the effect; the answer was lost)"
                )
            return self.store[store_key], replayed

    # ------------------------------------------------------------------ the two parties' operations

    @staticmethod
    def new_refund(body: dict[str, Any]) -> dict[str, Any]:
        method = body.get("method", ORIGINAL_PAYMENT_METHOD)
        if method != ORIGINAL_PAYMENT_METHOD:
            raise SandboxRejected(
                422,
                "method_not_allowed",
                f"refunds go to the original payment method, not {method!r}",
            )
        try:
            amount = Decimal(str(body["amount"]))
        except (KeyError, InvalidOperation):
            raise SandboxRejected(
                422, "invalid_amount", "amount must be a decimal string"
            ) from None
        if amount <= 0 or amount.as_tuple().exponent < -2:  # type: ignore[operator]
            raise SandboxRejected(
                422, "invalid_amount", "amount must be positive with at most 2 decimals"
            )
        currency = str(body.get("currency", ""))
        if len(currency) != 3 or not currency.isupper():
            raise SandboxRejected(422, "invalid_currency", "currency must be an ISO 4217 code")
        return {
            "id": f"sandbox_re_{uuid.uuid4().hex[:16]}",
            "object": "refund",
            "status": "succeeded",
            "amount": str(amount),
            "currency": currency,
            "method": ORIGINAL_PAYMENT_METHOD,
            "order_id": body.get("order_id"),
            "order_line_id": body.get("order_line_id"),
            "reference": str(body.get("reference", "")),
            "created": datetime.now(UTC).isoformat(),
        }

    @staticmethod
    def new_label(body: dict[str, Any]) -> dict[str, Any]:
        if not body.get("reference"):
            raise SandboxRejected(422, "invalid_request", "reference is required")
        if body.get("service", "prepaid_return") != "prepaid_return":
            raise SandboxRejected(
                422, "invalid_service", "the sandbox carrier only offers prepaid_return"
            )
        tracking = f"SBX{uuid.uuid4().int % 10**12:012d}"
        return {
            "id": f"sandbox_lb_{uuid.uuid4().hex[:16]}",
            "object": "label",
            "status": "issued",
            "tracking_number": tracking,
            "label_url": f"https://carrier.sandbox.invalid/labels/{tracking}.pdf",
            "cost": "4.90",
            "currency": str(body.get("currency") or "EUR"),
            "reference": str(body["reference"]),
            "created": datetime.now(UTC).isoformat(),
        }

    def paid_total(self) -> Decimal:
        return sum(
            (Decimal(v["amount"]) for k, v in self.store.items() if k.startswith("refund:")),
            Decimal("0"),
        )


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": {"code": code, "message": message}})


def create_sandbox_app(behaviour: SandboxBehaviour | None = None, *, api_key: str = "") -> FastAPI:
    """The payment provider and the carrier, in one small app (see RLS.md for the contract)."""
    core = SandboxCore(behaviour or SandboxBehaviour())
    app = FastAPI(title="RLS sandbox: payment provider and carrier", version="1.0.0")
    app.state.core = core

    async def _run(
        kind: str, request: Request, key: str | None, authorization: str | None, make: Callable
    ) -> JSONResponse:
        if api_key and authorization != f"Bearer {api_key}":
            return _error(401, "unauthorized", "missing or wrong bearer key")
        if not key:
            return _error(400, "idempotency_key_required", "the Idempotency-Key header is required")
        if len(key) > 255:
            return _error(
                400, "invalid_idempotency_key", "Idempotency-Key is at most 255 characters"
            )
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "invalid_json", "the body is not JSON")
        if not isinstance(body, dict):
            return _error(400, "invalid_json", "the body must be an object")
        try:
            answer, replayed = await core.execute(kind, key, lambda: make(body))
        except SandboxTransientError as exc:
            return JSONResponse(
                status_code=503,
                content={"error": {"code": "unavailable", "message": str(exc)}},
                headers={"Retry-After": "0"},
            )
        except SandboxRejected as exc:
            return _error(exc.status, exc.code, str(exc))
        return JSONResponse(
            status_code=200 if replayed else 201,
            content=answer,
            headers={"Idempotent-Replayed": "true" if replayed else "false"},
        )

    @app.post("/v1/refunds")
    async def create_refund(
        request: Request,
        idempotency_key: Annotated[str | None, Header()] = None,
        authorization: Annotated[str | None, Header()] = None,
    ) -> JSONResponse:
        return await _run("refund", request, idempotency_key, authorization, core.new_refund)

    @app.post("/v1/labels")
    async def create_label(
        request: Request,
        idempotency_key: Annotated[str | None, Header()] = None,
        authorization: Annotated[str | None, Header()] = None,
    ) -> JSONResponse:
        return await _run("label", request, idempotency_key, authorization, core.new_label)

    @app.get("/v1/refunds")
    async def list_refunds(reference: str | None = None) -> dict:
        data = [
            v
            for k, v in core.store.items()
            if k.startswith("refund:") and (reference is None or v["reference"] == reference)
        ]
        return {"data": data}

    @app.get("/_sandbox/stats")
    async def stats() -> dict:
        return {
            "refunds": core.effects["refund"],
            "labels": core.effects["label"],
            "failures": core.failures,
            "attempts": sum(core.attempts.values()),
            "paid_total": str(core.paid_total()),
        }

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok"}

    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m refund_logistics.sandbox", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8091)
    parser.add_argument("--latency-ms", type=float, default=80.0)
    parser.add_argument("--jitter-ms", type=float, default=120.0)
    parser.add_argument(
        "--failure-rate", type=float, default=0.05, help="chance of a transient 503 per request"
    )
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument(
        "--api-key", default="", help="require 'Authorization: Bearer <key>' when set"
    )
    args = parser.parse_args(argv)
    import uvicorn

    behaviour = SandboxBehaviour(
        latency_s=args.latency_ms / 1000,
        latency_jitter_s=args.jitter_ms / 1000,
        failure_rate=args.failure_rate,
        seed=args.seed,
    )
    uvicorn.run(
        create_sandbox_app(behaviour, api_key=args.api_key),
        host=args.host,
        port=args.port,
        log_level="info",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
