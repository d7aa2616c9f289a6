"""What recall-intake's routers share: keyset pages (newest first), one row the caller may see or a
404, and creation under an ``Idempotency-Key`` (a retry answers as the first request did)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from fastapi import HTTPException, Query, Response, status
from sqlalchemy import Select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from recall_shared.cursors import decode_cursor, encode_cursor

Limit = Annotated[int, Query(ge=1, le=200)]
T = TypeVar("T")


def page_after(stmt: Select, cursor: str | None, at: Any, key: Any) -> Select:
    """Newest first, after the cursor's position."""
    if cursor:
        ts, item_id = decode_cursor(cursor)
        stmt = stmt.where(tuple_(at, key) < tuple_(ts, item_id))
    return stmt.order_by(at.desc(), key.desc())


async def keyset_page(
    session: AsyncSession,
    stmt: Select,
    cursor: str | None,
    limit: int,
    at: InstrumentedAttribute[Any],
    key: InstrumentedAttribute[Any],
) -> tuple[list[Any], str | None]:
    """Up to ``limit`` rows of ``stmt`` after the cursor, newest (``at``, then ``key``) first, and
    the cursor of the next page (None on the last)."""
    stmt = page_after(stmt, cursor, at, key)
    rows = list((await session.execute(stmt.limit(limit + 1))).scalars())
    more, rows = len(rows) > limit, rows[:limit]
    last = rows[-1] if more else None
    return rows, encode_cursor(getattr(last, at.key), getattr(last, key.key)) if last else None


async def one_or_404(session: AsyncSession, stmt: Select, what: str, *, lock: bool = False) -> Any:
    """The one row of ``stmt`` (locked if asked), or 404 "<what> not found": a row the caller may
    not see (``stmt`` leaves it out) is as unknown."""
    if lock:
        stmt = stmt.with_for_update()
    row = (await session.execute(stmt)).scalar_one_or_none()
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"{what} not found")
    return row


async def created_once(
    session: AsyncSession,
    response: Response,
    *,
    find: Callable[[], Awaitable[T | None]],
    create: Callable[[], Awaitable[T]],
    same: Callable[[T], bool],
    differs: str = "body",
) -> tuple[T, bool]:
    """Idempotent creation: the row an earlier request with the same Idempotency-Key made (``find``;
    it answers again, marked ``Idempotent-Replayed``; 422 if that request's ``differs`` was not the
    same), else the row ``create`` adds, committed. A concurrent retry that commits first wins the
    unique index: answered as it was. Returns the row and whether it was replayed."""
    prior = await find()
    if prior is None:
        try:
            row = await create()
            await session.commit()
            return row, False
        except IntegrityError:
            await session.rollback()
            prior = await find()
            if prior is None:
                raise
    if not same(prior):
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail={
                "error": "idempotency_key_reused",
                "message": f"Idempotency-Key was used with a different {differs}",
            },
        )
    response.headers["Idempotent-Replayed"] = "true"
    return prior, True
