"""Letters returned undeliverable, as the mail house reports them: a CSV return file naming the
letters by the ids of the batch manifest (``python -m notifier letter-returns FILE``).

A returned letter is recorded like a hard bounce: its notices (one letter can carry several of
one recipient) get ``delivery = 'bounced'``, ``bounce_type = 'hard'``, ``delivery_status =
'returned'`` and a ``notification.letter_returned.v1`` each, so reach stops counting them and the
recipient shows in the unreachable queue once nothing else reaches them; the recipient's postal
address is marked undeliverable, so no letter is queued or batched for it again until
customers.v1 (or a gift's order) gives another address. Importing the same file again changes
nothing: a notice already returned is left as it is and its event id is deterministic.

The return file: UTF-8 CSV with a header row; ``letter_id`` (required: the manifest's), and
optionally ``returned_on`` (ISO date or date-time; default: the import's time) and ``reason`` (as
the mail house words it, e.g. "moved away").
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import ColumnElement, case, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notifier.models import Contact
from recall_shared import events as ev
from recall_shared.outbox import Outbox

RETURN_FIELDS = ("letter_id", "returned_on", "reason")
DEFAULT_REASON = "returned undeliverable"

_RETURN = text(
    """
    UPDATE notices n SET delivery = 'bounced', bounce_type = 'hard', delivery_status = 'returned',
        delivery_detail = :reason, delivery_at = :at
    FROM alerts a
    WHERE n.letter_id = :letter AND n.channel = 'letter' AND n.status = 'sent'
      AND n.delivery IS DISTINCT FROM 'bounced' AND a.alert_id = n.alert_id
    RETURNING n.notice_id, n.alert_id, n.customer_id, n.recipient_customer_id, n.kind,
              n.alert_version, a.state ->> 'recall_id' AS recall_id
    """
)
_KNOWN = text("SELECT 1 FROM notices WHERE letter_id = :letter AND channel = 'letter' LIMIT 1")
_MARK = text(
    "UPDATE contacts SET postal_undeliverable_at = :at WHERE customer_id = ANY(:ids) "
    "AND postal_address IS NOT NULL AND postal_undeliverable_at IS NULL"
)


class ReturnFileError(ValueError):
    """The return file cannot be read as one: the message names the row and the field."""


@dataclass(frozen=True, slots=True)
class ReturnedLetter:
    letter_id: str
    returned_at: datetime | None  # None: when imported
    reason: str


@dataclass
class ReturnsResult:
    returned: int = 0  # letters newly recorded returned
    notices: int = 0
    already: int = 0  # named again: recorded by an earlier import
    unknown: list[str] = field(default_factory=list)  # ids no letter of ours has


def parse_return_file(data: bytes) -> list[ReturnedLetter]:
    """The rows of a return file (pure); :class:`ReturnFileError` names what is wrong."""
    try:
        content = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ReturnFileError(f"the return file is not UTF-8 ({exc.reason})") from None
    reader = csv.DictReader(io.StringIO(content, newline=""))
    if reader.fieldnames is None or "letter_id" not in [f.strip() for f in reader.fieldnames]:
        raise ReturnFileError("the return file has no letter_id column in its header row")
    out: list[ReturnedLetter] = []
    for n, raw in enumerate(reader, start=2):
        row = {(k or "").strip(): (v or "").strip() for k, v in raw.items() if k is not None}
        letter_id = row.get("letter_id", "")
        if not letter_id:
            raise ReturnFileError(f"row {n}: letter_id is empty")
        if len(letter_id) > 100:
            raise ReturnFileError(f"row {n}: letter_id is longer than 100 characters")
        out.append(
            ReturnedLetter(
                letter_id=letter_id,
                returned_at=_when(row.get("returned_on", ""), n),
                reason=row.get("reason", "")[:2000] or DEFAULT_REASON,
            )
        )
    return out


def _when(value: str, n: int) -> datetime | None:
    if not value:
        return None
    try:
        if len(value) == 10:
            d = date.fromisoformat(value)
            return datetime(d.year, d.month, d.day, tzinfo=UTC)
        at = datetime.fromisoformat(value)
    except ValueError:
        raise ReturnFileError(
            f"row {n}: returned_on {value!r} is not an ISO date (2026-12-01) or date-time"
        ) from None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def undeliverable_unless_moved(excluded: Any) -> ColumnElement[Any]:
    """For a contact upsert: the undeliverable mark stays while the postal address is the same,
    and goes with a new one."""
    return case(
        (Contact.postal_address.is_distinct_from(excluded.postal_address), None),
        else_=Contact.postal_undeliverable_at,
    )


async def import_returns(
    session_factory: async_sessionmaker[AsyncSession],
    outbox: Outbox,
    letters: Iterable[ReturnedLetter],
    *,
    now: datetime,
    progress: Callable[[int], None] | None = None,
) -> ReturnsResult:
    """Record each returned letter (one transaction per letter, so a long file can be stopped and
    imported again); ``progress(done)`` after each."""
    result = ReturnsResult()
    for i, letter in enumerate(letters, 1):
        async with session_factory() as session, session.begin():
            await _one(session, outbox, letter, now, result)
        if progress is not None:
            progress(i)
    return result


async def _one(
    session: AsyncSession,
    outbox: Outbox,
    letter: ReturnedLetter,
    now: datetime,
    result: ReturnsResult,
) -> None:
    at = letter.returned_at or now
    values = {"letter": letter.letter_id, "reason": letter.reason, "at": at}
    rows = (await session.execute(_RETURN, values)).all()
    if not rows:
        known = (await session.execute(_KNOWN, {"letter": letter.letter_id})).first()
        if known is None:
            result.unknown.append(letter.letter_id)
        else:
            result.already += 1
        return
    await session.execute(_MARK, {"ids": [r.recipient_customer_id for r in rows], "at": at})
    await outbox.add_many(
        session,
        [
            (
                ev.NoticeLetterReturned(
                    notice_id=r.notice_id,
                    alert_id=r.alert_id,
                    customer_id=r.customer_id,
                    recall_id=r.recall_id,
                    kind=r.kind,
                    alert_version=r.alert_version,
                    letter_id=letter.letter_id,
                    reason=letter.reason,
                    returned_at=at,
                ),
                f"notice:{r.notice_id}:returned",
            )
            for r in rows
        ],
    )
    result.returned += 1
    result.notices += len(rows)
