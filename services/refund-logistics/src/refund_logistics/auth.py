"""Who is calling: sellers and operators by API key (from the sellers.v1 read model), customers by JWT.

The seller comes from the key, never from the request. A seller sees only its own recalls and their cases;
anything else is "not found" (404), so ids of other sellers' recalls are not confirmed to exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends, Header, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select

from recall_shared.auth import CustomerTokenVerifier, InvalidToken, hash_api_key
from recall_shared.http import RuntimeDep, SessionDep
from refund_logistics.models import KnownRecall, SellerKey


@dataclass(frozen=True)
class Principal:
    role: Literal["seller", "operator"]
    seller_id: str | None
    key_id: str

    @property
    def is_operator(self) -> bool:
        return self.role == "operator"

    def owns(self, recall: KnownRecall | None) -> bool:
        """Operators see every recall; a seller only the recalls it published."""
        if recall is None:
            return False
        return self.is_operator or (self.seller_id is not None and recall.seller_id == self.seller_id)


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=message, headers={"WWW-Authenticate": "ApiKey"})


async def current_principal(
    session: SessionDep, runtime: RuntimeDep,
    x_api_key: Annotated[str | None, Header(description="Seller or operator API key")] = None,
) -> Principal:
    if not x_api_key:
        raise _unauthorized("missing X-Api-Key header")
    key_hash = hash_api_key(x_api_key, runtime.settings.api_key_pepper)
    row = (await session.execute(
        select(SellerKey.key_id, SellerKey.role, SellerKey.seller_id, SellerKey.revoked_at).where(SellerKey.key_hash == key_hash)
    )).first()
    # Give the connection back before the route runs: a command opens its own transaction, and holding
    # two connections per request would let a burst of requests exhaust the pool.
    await session.rollback()
    if row is None or row.revoked_at is not None or (row.role == "seller" and not row.seller_id):
        raise _unauthorized("invalid or revoked API key")
    return Principal(role=row.role, seller_id=row.seller_id, key_id=row.key_id)


PrincipalDep = Annotated[Principal, Depends(current_principal)]


async def require_operator(principal: PrincipalDep) -> Principal:
    if not principal.is_operator:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="operator key required")
    return principal


OperatorDep = Annotated[Principal, Depends(require_operator)]

_bearer = HTTPBearer(auto_error=False)


async def current_customer(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> str:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
    verifier: CustomerTokenVerifier = request.app.state.token_verifier
    try:
        return verifier.customer_id(credentials.credentials)
    except InvalidToken as exc:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(exc),
                            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}) from None


CustomerDep = Annotated[str, Depends(current_customer)]
