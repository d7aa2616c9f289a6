"""API-key authentication for sellers and operators. The seller comes from the key, never the body."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import Depends, Header, HTTPException, status
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from recall_intake.models import ApiKey
from recall_shared import events as ev
from recall_shared.auth import generate_api_key, hash_api_key, key_display_prefix
from recall_shared.http import RuntimeDep, SessionDep
from recall_shared.outbox import Outbox

Role = Literal["seller", "operator"]


@dataclass(frozen=True)
class Principal:
    role: Role
    seller_id: str | None
    key_id: str

    @property
    def is_operator(self) -> bool:
        return self.role == "operator"

    @property
    def owner_key(self) -> str:
        return self.seller_id if self.role == "seller" and self.seller_id else "operator"


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=message, headers={"WWW-Authenticate": "ApiKey"})


async def current_principal(
    session: SessionDep,
    runtime: RuntimeDep,
    x_api_key: Annotated[str | None, Header(description="Seller or operator API key")] = None,
) -> Principal:
    if not x_api_key:
        raise _unauthorized("missing X-Api-Key header")
    key_hash = hash_api_key(x_api_key, runtime.settings.api_key_pepper)
    row = (await session.execute(select(ApiKey).where(ApiKey.key_hash == key_hash))).scalar_one_or_none()
    if row is None or row.revoked_at is not None:
        raise _unauthorized("invalid or revoked API key")
    return Principal(role=row.role, seller_id=row.seller_id, key_id=row.key_id)  # type: ignore[arg-type]


PrincipalDep = Annotated[Principal, Depends(current_principal)]


async def require_operator(principal: PrincipalDep) -> Principal:
    if not principal.is_operator:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="operator key required")
    return principal


OperatorDep = Annotated[Principal, Depends(require_operator)]


async def issue_key(
    session: AsyncSession, *, role: Role, seller_id: str | None, label: str, pepper: str, outbox: Outbox
) -> tuple[str, ApiKey]:
    """Create a key; returns the plaintext (shown once) and the stored row (hash only). The hash goes out
    on sellers.v1 so other services (refund-logistics) can authenticate the seller themselves."""
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
        ev.ApiKeyIssued(key_id=row.key_id, key_hash=row.key_hash, role=role, seller_id=seller_id, issued_at=datetime.now(UTC)),
        event_id=f"api-key:{row.key_id}:issued",
    )
    return plaintext, row


async def revoke_key(session: AsyncSession, row: ApiKey, outbox: Outbox) -> None:
    if row.revoked_at is not None:
        return
    row.revoked_at = datetime.now(UTC)
    await outbox.add(
        session, ev.ApiKeyRevoked(key_id=row.key_id, revoked_at=row.revoked_at), event_id=f"api-key:{row.key_id}:revoked"
    )
