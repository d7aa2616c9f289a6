"""The carrier port (prepaid return labels), its HTTP adapter and a local sandbox. Contract:
RLS.md."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from refund_logistics.http_retry import IdempotentHttpParty, PartyError
from refund_logistics.sandbox import (
    SandboxBehaviour,
    SandboxCore,
    SandboxRejected,
    SandboxTransientError,
)


@dataclass(frozen=True)
class Label:
    carrier_ref: str
    tracking_number: str
    label_url: str
    cost: Decimal
    currency: str


class CarrierError(Exception):
    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


class Carrier(Protocol):
    async def issue_label(
        self,
        *,
        idempotency_key: str,
        reference: str,
        customer_id: str,
        units: int,
        return_to: str,
        currency: str,
    ) -> Label: ...


def label_body(reference: str, customer_id: str, units: int, return_to: str, currency: str) -> dict:
    return {
        "service": "prepaid_return",
        "reference": reference,
        "customer_ref": customer_id,
        "parcel": {"units": units},
        "return_to": return_to,
        "currency": currency,
    }


def _label(body: dict) -> Label:
    return Label(
        carrier_ref=str(body["id"]),
        tracking_number=str(body["tracking_number"]),
        label_url=str(body["label_url"]),
        cost=Decimal(str(body.get("cost", "0"))),
        currency=str(body.get("currency", "EUR")),
    )


class HttpCarrier(IdempotentHttpParty):
    """``POST {base}/v1/labels`` with ``Idempotency-Key``; answer 201 (200 on a replay)
    {id, tracking_number, label_url, cost, currency}. Transient failures are retried with the same
    key."""

    party = "carrier"

    async def issue_label(
        self,
        *,
        idempotency_key: str,
        reference: str,
        customer_id: str,
        units: int,
        return_to: str,
        currency: str,
    ) -> Label:
        try:
            body = await self.post(
                "/v1/labels",
                label_body(reference, customer_id, units, return_to, currency),
                idempotency_key=idempotency_key,
            )
        except PartyError as exc:
            raise CarrierError(str(exc), transient=exc.transient) from exc
        return _label(body)


class SandboxCarrier:
    """The sandbox carrier in process; tracking numbers start with ``SBX``."""

    def __init__(self, behaviour: SandboxBehaviour | None = None) -> None:
        self.core = SandboxCore(behaviour or SandboxBehaviour())
        self.labels: dict[str, Label] = {}

    async def issue_label(
        self,
        *,
        idempotency_key: str,
        reference: str,
        customer_id: str,
        units: int,
        return_to: str,
        currency: str,
    ) -> Label:
        body = label_body(reference, customer_id, units, return_to, currency)
        try:
            answer, _ = await self.core.execute(
                "label", idempotency_key, lambda: self.core.new_label(body)
            )
        except SandboxTransientError as exc:
            raise CarrierError(str(exc), transient=True) from exc
        except SandboxRejected as exc:
            raise CarrierError(str(exc), transient=False) from exc
        label = _label(answer)
        self.labels.setdefault(idempotency_key, label)
        return label
