"""API-key authentication for sellers and operators. The seller comes from the key, never the body."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends, Header, HTTPException, status
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from recall_intake.models import ApiKey
from recall_shared.auth import generate_api_key, hash_api_key, key_display_prefix
from recall_shared.http import RuntimeDep, SessionDep

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
    session: AsyncSession, *, role: Role, seller_id: str | None, label: str, pepper: str
) -> tuple[str, ApiKey]:
    """Create a key; returns the plaintext (shown once) and the stored row (hash only)."""
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
    return plaintext, row
