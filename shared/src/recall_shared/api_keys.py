"""Seller and operator API keys in a service other than recall-intake: the ``seller_keys`` read
model of sellers.v1, its two handlers, and the FastAPI dependencies that authenticate ``X-Api-Key``
against it.

recall-intake issues keys and publishes only their HMAC hashes (``ev.ApiKeyIssued`` /
``ev.ApiKeyRevoked``). A service that serves sellers or operators keeps its own copy of those
hashes::

    class SellerKey(SellerKeyColumns, Base):          # models.py: the seller_keys table
        pass

    runtime.add_consumer([SELLERS], key_handlers(SellerKey), group_suffix=".sellers")   # app.py

    keys = ApiKeyAuth(SellerKey)                       # auth.py
    PrincipalDep = Annotated[Principal, Depends(keys.current_principal)]
    OperatorDep = Annotated[Principal, Depends(keys.require_operator)]

The seller comes from the key, never from the request. A seller sees only its own resources;
anything else should be answered "not found" (404), so ids of other sellers' resources are not
confirmed to exist.
"""

# No ``from __future__ import annotations``: FastAPI reads the dependencies' annotations at runtime,
# and those of the closures in ApiKeyAuth name a local function (a string annotation could not be
# resolved).

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal, Protocol

from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.security import APIKeyHeader
from sqlalchemy import DateTime, String, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from recall_shared import events as ev
from recall_shared.auth import has_api_key_shape, hash_api_key
from recall_shared.envelope import Envelope
from recall_shared.handlers import HandlerMap
from recall_shared.http import RuntimeDep, SessionDep
from recall_shared.logging import note_principal
from recall_shared.openapi import raises

Role = Literal["seller", "operator"]


# --------------------------------------------------------------------------- the read model


class SellerKeyColumns:
    """Mixin for a service's declarative ``Base``: the ``seller_keys`` table, API key hashes (HMAC
    under the system-wide pepper), never plaintext. With the shared naming convention:
    ``pk_seller_keys``, ``uq_seller_keys_key_hash``."""

    __tablename__ = "seller_keys"
    key_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(128), unique=True)
    role: Mapped[str] = mapped_column(String(20))  # seller | operator
    seller_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


KeyModel = type[SellerKeyColumns]


class KeyColumns(Protocol):
    """The columns ApiKeyAuth reads: a ``seller_keys`` read model (SellerKeyColumns), or
    recall-intake's own ``api_keys`` table, the source it is copied from. Class attributes (the
    mapped columns), as the queries read them."""

    __tablename__: str
    key_id: ClassVar[Mapped[str]]
    key_hash: ClassVar[Mapped[str]]
    role: ClassVar[Mapped[str]]
    seller_id: ClassVar[Mapped[str | None]]
    revoked_at: ClassVar[Mapped[datetime | None]]


async def record_key_issued(session: AsyncSession, model: KeyModel, event: ev.ApiKeyIssued) -> None:
    """Upsert the key; a repeat leaves ``revoked_at`` alone (a revoked key stays revoked)."""
    stmt = insert(model).values(
        key_id=event.key_id,
        key_hash=event.key_hash,
        role=event.role,
        seller_id=event.seller_id,
        issued_at=event.issued_at,
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["key_id"],
            set_={
                "key_hash": stmt.excluded.key_hash,
                "role": stmt.excluded.role,
                "seller_id": stmt.excluded.seller_id,
            },
        )
    )


async def record_key_revoked(
    session: AsyncSession, model: KeyModel, event: ev.ApiKeyRevoked
) -> None:
    await session.execute(
        update(model).where(model.key_id == event.key_id).values(revoked_at=event.revoked_at)
    )


def key_handlers(model: KeyModel) -> HandlerMap:
    """The sellers.v1 handlers for ``runtime.add_consumer`` (one transaction each, like any
    handler)."""

    async def on_key_issued(session: AsyncSession, event: ev.ApiKeyIssued, env: Envelope) -> None:
        await record_key_issued(session, model, event)

    async def on_key_revoked(session: AsyncSession, event: ev.ApiKeyRevoked, env: Envelope) -> None:
        await record_key_revoked(session, model, event)

    return {ev.ApiKeyIssued: on_key_issued, ev.ApiKeyRevoked: on_key_revoked}


# --------------------------------------------------------------------------- who is calling


class Owned(Protocol):
    """Anything that belongs to a seller (a recall, a case), or to none (``seller_id`` None)."""

    @property
    def seller_id(self) -> str | None: ...


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
        """Whose a resource it creates is: its seller's id, or "operator" (idempotency keys are
        scoped to it)."""
        return self.seller_id if self.role == "seller" and self.seller_id else "operator"

    def may_see(self, seller_id: str | None) -> bool:
        """Operators see everything; a seller only what belongs to it (a resource's
        ``seller_id``)."""
        return self.is_operator or (self.seller_id is not None and seller_id == self.seller_id)

    def owns(self, resource: Owned | None) -> bool:
        """``may_see`` for a resource that may not exist: nobody owns a missing one."""
        return resource is not None and self.may_see(resource.seller_id)


# The ``ApiKey`` security scheme of every service's OpenAPI document (auto_error off: the 401 below,
# with the project's error shape and WWW-Authenticate, rather than FastAPI's 403).
API_KEY_HEADER = APIKeyHeader(
    name="X-Api-Key",
    scheme_name="ApiKey",
    description="A seller's or operator's API key (recall-intake issues them)",
    auto_error=False,
)


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail=message, headers={"WWW-Authenticate": "ApiKey"}
    )


# A new key reaches a read model within seconds of recall-intake issuing it (the sellers.v1
# consumer has a group of its own).
KEY_RETRY_AFTER_S = 2


def _not_known_yet() -> HTTPException:
    """docs/decisions/0008: a key of the right shape the read model has not seen may have been
    issued a moment ago; the same request may succeed shortly."""
    return HTTPException(
        status.HTTP_409_CONFLICT,
        detail={
            "error": "not_known_yet",
            "message": "this service has not read this API key from sellers.v1 (yet): a key "
            f"issued seconds ago is known here shortly, send the same request again in "
            f"{KEY_RETRY_AFTER_S} s; a key that stays unknown was never issued (by this "
            "installation's recall-intake)",
        },
        headers={"Retry-After": str(KEY_RETRY_AFTER_S)},
    )


class Fetcher(Protocol):
    """A read pool (recall_shared.read_pool.ReadPool): one statement, its rows."""

    async def fetch(self, query: str, *args: Any) -> list[Any]: ...


def _principal_of(row: Sequence[Any] | None) -> Principal:
    """Who a key's row (key_id, role, seller_id, revoked_at) says is calling; 401 for an unknown or
    revoked key, and a seller key without a seller."""
    if row is None:
        raise _unauthorized("invalid or revoked API key")
    key_id, role, seller_id, revoked_at = row
    if revoked_at is not None or (role == "seller" and not seller_id):
        raise _unauthorized("invalid or revoked API key")
    return Principal(role=role, seller_id=seller_id, key_id=key_id)


def _operator(principal: Principal) -> Principal:
    if not principal.is_operator:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="operator key required")
    return principal


class ApiKeyAuth:
    """The ``X-Api-Key`` dependencies of one service, over its ``seller_keys`` model:

    - ``current_principal``: 401 for a missing, unknown or revoked key (and a seller key without a
      seller); with ``read_model`` (a copy of sellers.v1, not recall-intake's own table), an
      unknown key of the issued shape is ``409 not_known_yet`` with ``Retry-After`` instead;
    - ``require_operator``: that, and 403 for a seller key;
    - ``operator_on(pool_of)``: ``require_operator`` reading the key on a hot route's read pool
      (one round trip) instead of a session.
    """

    def __init__(self, model: type[KeyColumns], *, read_model: bool = False) -> None:
        self.model = model
        self.read_model = read_model
        statuses = (401, 409) if read_model else (401,)
        self.statuses = statuses

        @raises(*statuses)
        async def current_principal(
            session: SessionDep,
            runtime: RuntimeDep,
            x_api_key: Annotated[str | None, Security(API_KEY_HEADER)] = None,
        ) -> Principal:
            if not x_api_key:
                raise _unauthorized("missing X-Api-Key header")
            key_hash = hash_api_key(x_api_key, runtime.settings.api_key_pepper)
            row = (
                await session.execute(
                    select(model.key_id, model.role, model.seller_id, model.revoked_at).where(
                        model.key_hash == key_hash
                    )
                )
            ).first()
            # Give the connection back before the route runs: a command opens its own transaction,
            # and holding two connections per request would let a burst of requests exhaust the
            # pool.
            await session.rollback()
            if row is None and read_model and has_api_key_shape(x_api_key):
                raise _not_known_yet()
            principal = _principal_of(row)
            note_principal(principal.role)  # for the request's access log line
            return principal

        @raises(*statuses, 403)
        async def require_operator(
            principal: Annotated[Principal, Depends(current_principal)],
        ) -> Principal:
            return _operator(principal)

        self.current_principal = current_principal
        self.require_operator = require_operator

    def operator_on(
        self, pool_of: Callable[[Request], Fetcher]
    ) -> Callable[..., Awaitable[Principal]]:
        """``require_operator`` for a hot route: the key's row read on the route's own read pool
        (``pool_of(request)``), the same answers."""
        query = (
            f"SELECT key_id, role, seller_id, revoked_at FROM {self.model.__tablename__} "
            "WHERE key_hash = $1"
        )

        @raises(*self.statuses, 403)
        async def require_operator(
            request: Request,
            runtime: RuntimeDep,
            x_api_key: Annotated[str | None, Security(API_KEY_HEADER)] = None,
        ) -> Principal:
            if not x_api_key:
                raise _unauthorized("missing X-Api-Key header")
            key_hash = hash_api_key(x_api_key, runtime.settings.api_key_pepper)
            rows = await pool_of(request).fetch(query, key_hash)
            if not rows and self.read_model and has_api_key_shape(x_api_key):
                raise _not_known_yet()
            principal = _principal_of(rows[0] if rows else None)
            note_principal(principal.role)  # for the request's access log line
            return _operator(principal)

        return require_operator
