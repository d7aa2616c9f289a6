"""API-key authentication for sellers and operators. The seller comes from the key, never the
body."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession

from recall_intake.models import ApiKey, Seller
from recall_shared import events as ev
from recall_shared.api_keys import ApiKeyAuth, Principal, Role
from recall_shared.auth import generate_api_key, hash_api_key, key_display_prefix
from recall_shared.event_ids import event_id
from recall_shared.outbox import Outbox

# recall-intake's own table is the source the other services' read models copy.
keys = ApiKeyAuth(ApiKey)
PrincipalDep = Annotated[Principal, Depends(keys.current_principal)]
OperatorDep = Annotated[Principal, Depends(keys.require_operator)]

__all__ = [
    "OperatorDep",
    "Principal",
    "PrincipalDep",
    "Role",
    "UnknownSeller",
    "issue_key",
    "revoke_key",
]


class UnknownSeller(LookupError):
    """A seller key for a seller nobody registered: refused by the API and the CLI alike."""

    def __init__(self, seller_id: str) -> None:
        super().__init__(f"seller_id: unknown seller {seller_id!r}")
        self.seller_id = seller_id


async def issue_key(
    session: AsyncSession,
    *,
    role: Role,
    seller_id: str | None,
    label: str,
    pepper: str,
    outbox: Outbox,
) -> tuple[str, ApiKey]:
    """Create a key; returns the plaintext (shown once) and the stored row (hash only). The hash
    goes out on sellers.v1 so other services (refund-logistics) can authenticate the seller.

    A seller key needs a registered seller (POST /v1/operator/sellers, ``recall-intake
    register-seller``); otherwise :class:`UnknownSeller`."""
    if seller_id and await session.get(Seller, seller_id) is None:
        raise UnknownSeller(seller_id)
    plaintext = generate_api_key()
    row = ApiKey(
        key_id=str(uuid.uuid4()),
        key_hash=hash_api_key(plaintext, pepper),
        display_prefix=key_display_prefix(plaintext),
        role=role,
        seller_id=seller_id,
        label=label,
    )
    session.add(row)
    await session.flush()
    await outbox.add(
        session,
        ev.ApiKeyIssued(
            key_id=row.key_id,
            key_hash=row.key_hash,
            role=role,
            seller_id=seller_id,
            issued_at=datetime.now(UTC),
        ),
        event_id=event_id("api-key", row.key_id, "issued"),
    )
    return plaintext, row


async def revoke_key(session: AsyncSession, row: ApiKey, outbox: Outbox) -> None:
    if row.revoked_at is not None:
        return
    row.revoked_at = datetime.now(UTC)
    await outbox.add(
        session,
        ev.ApiKeyRevoked(key_id=row.key_id, revoked_at=row.revoked_at),
        event_id=event_id("api-key", row.key_id, "revoked"),
    )
