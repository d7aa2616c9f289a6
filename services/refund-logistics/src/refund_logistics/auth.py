"""Who is calling: sellers and operators by API key (from the sellers.v1 read model), customers by
JWT.

The seller comes from the key, never from the request. A seller sees only its own recalls and their
cases; anything else is "not found" (404), so ids of other sellers' recalls are not confirmed to
exist.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from recall_shared.api_keys import ApiKeyAuth, Principal
from recall_shared.auth import CustomerTokenVerifier, InvalidToken
from recall_shared.openapi import raises
from refund_logistics.models import SellerKey

__all__ = ["CustomerDep", "OperatorDep", "Principal", "PrincipalDep", "current_customer", "keys"]

# X-Api-Key against the seller_keys read model (recall_shared.api_keys): 401 for a missing,
# malformed or revoked key, 409 not_known_yet for one not read from sellers.v1 yet; operator routes
# 403 for seller keys.
keys = ApiKeyAuth(SellerKey, read_model=True)
PrincipalDep = Annotated[Principal, Depends(keys.current_principal)]
OperatorDep = Annotated[Principal, Depends(keys.require_operator)]

_bearer = HTTPBearer(auto_error=False)


@raises(401)
async def current_customer(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> str:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    verifier: CustomerTokenVerifier = request.app.state.token_verifier
    try:
        return verifier.customer_id(credentials.credentials)
    except InvalidToken as exc:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            str(exc),
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        ) from None


CustomerDep = Annotated[str, Depends(current_customer)]
