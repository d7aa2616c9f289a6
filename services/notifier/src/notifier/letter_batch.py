"""The daily letter batch: the queued letters (fallback notices on ``channel = 'letter'``) become
one PDF per customer and a manifest (CSV) for the mail house, in a folder of their own under
``letter_dir``.

    pending (queued) --batch claims it--> sending (in batch B) --B's manifest is written--> sent
                                             |                  (+ notification.letter_sent.v1)
                                             '--alert withdrawn, letter refused, address gone-->
                                                cancelled / waiting_contact

The manifest is written last, by an atomic rename: a folder without one is no batch, and the mail
house takes only folders with one. A batch that stopped half way (the process died) is taken up
again by the next run: its letters, still ``sending``, are recorded as sent if their batch's
manifest exists (the mail house may have taken it), else batched again. So every letter is posted,
and, but for a crash between the manifest's rename and the commit, once.

Run daily by the service at ``letter_batch_hour`` (by its clock), or by ``notifier letter-batch``
(e.g. from cron; it shows a progress bar).

Traced (when tracing is on): a ``letter batch`` span per run, a trace of its own with the count of
letters, and a ``letter write`` span per letter in the trace its (first) notice keeps, the recall's
(notifier.notice_traces), linked to the batch's span and to its other notices' traces.
"""

from __future__ import annotations

import asyncio
import csv
import logging
import os
import secrets
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Link, Span, Tracer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notifier.clock import Clock, SystemClock
from notifier.domain import ClaimedNotice, Hold, decide_letter, reported_role
from notifier.letters import Letter, LetterNotice, LetterRenderer, manifest_csv, manifest_row
from notifier.notice_traces import send_parent
from notifier.settings import Settings
from recall_shared import events as ev
from recall_shared.outbox import Outbox
from recall_shared.waits import wait_set

log = logging.getLogger(__name__)

MANIFEST = "manifest.csv"
# A batch holds its letters this long; a run that died is taken up once it has passed.
BATCH_LEASE_S = 3600

_CLAIM = text(
    """
    WITH due AS (
        SELECT notice_id FROM notices
        WHERE channel = 'letter' AND status IN ('pending', 'sending') AND next_attempt_at <= now()
        ORDER BY created_at LIMIT :n FOR UPDATE SKIP LOCKED),
    claimed AS (
        UPDATE notices n SET attempts = n.attempts + 1, status = 'sending', sending_at = now(),
            next_attempt_at = now() + make_interval(secs => :lease),
            message_id = CASE WHEN n.status = 'sending' THEN n.message_id ELSE :batch END
        FROM due WHERE n.notice_id = due.notice_id
        RETURNING n.*)
    SELECT c.notice_id, c.message_id AS batch_id, c.alert_id, c.customer_id,
           c.recipient_customer_id, c.recipient_role, c.kind, c.alert_version, c.reminder_no,
           c.traceparent, c.tracestate,
           a.status AS alert_status, a.state, ct.name, ct.locale,
           CASE WHEN ct.postal_undeliverable_at IS NULL THEN ct.postal_address END
               AS postal_address,
           coalesce(ct.letter_opt_out, false) AS letter_opt_out,
           EXISTS (SELECT 1 FROM alert_responses r WHERE r.alert_id = c.alert_id) AS responded
    FROM claimed c
    LEFT JOIN alerts a ON a.alert_id = c.alert_id
    LEFT JOIN contacts ct ON ct.customer_id = c.recipient_customer_id
    ORDER BY c.recipient_customer_id, c.created_at
    """
)
_HOLD = text(
    "UPDATE notices SET status = :st, last_error = :err WHERE notice_id = :id "
    "AND status = 'sending'"
)
_SENT = text(
    """
    UPDATE notices SET status = 'sent', sent_at = :at, sent_to = :to, message_id = :batch,
        letter_id = :letter, last_error = NULL
    WHERE notice_id = :id AND status = 'sending' RETURNING notice_id
    """
)


@dataclass
class BatchResult:
    batch_id: str
    letters: int = 0
    notices: int = 0
    held: int = 0
    folder: Path | None = None
    files: list[str] = field(default_factory=list)


def _letter_ids_in(manifest: Path) -> dict[str, str]:
    """notice id -> letter id, as a batch's manifest lists them."""
    with manifest.open(encoding="utf-8", newline="") as f:
        return {
            notice_id: row["letter_id"]
            for row in csv.DictReader(f)
            for notice_id in row["notice_ids"].split(";")
        }


def batch_id_for(at: datetime) -> str:
    """A batch's id and folder name: its time, to the second (UTC), and a random tag, so two
    runs in the same second (the service's and one from cron) never share a folder."""
    return f"letters-{at.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(3)}"


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class LetterBatcher:
    def __init__(
        self,
        *,
        settings: Settings,
        session_factory: async_sessionmaker[AsyncSession],
        outbox: Outbox,
        clock: Clock | None = None,
        tracer: Tracer | None = None,
    ) -> None:
        if not settings.letter_dir:
            raise ValueError("letters need NOTIFIER_LETTER_DIR")
        self.settings = settings
        self.root = Path(settings.letter_dir)
        self.session_factory = session_factory
        self.outbox = outbox
        self.clock = clock or SystemClock()
        self.tracer = tracer or trace.NoOpTracer()
        self.renderer = LetterRenderer(
            portal_url=settings.customer_portal_url,
            return_address=settings.letter_return_address,
        )
        self._stopping = asyncio.Event()
        self.last_run_day: str | None = None

    def stop(self) -> None:
        self._stopping.set()

    async def run(self, _runtime: object = None) -> None:
        """Once a day, at ``letter_batch_hour`` by the clock (or later the same day, if the
        service was down then)."""
        hour = self.settings.letter_batch_hour
        while hour is not None and not self._stopping.is_set():
            now = self.clock.now()
            day = now.strftime("%Y-%m-%d")
            if now.hour >= hour and self.last_run_day != day:
                try:
                    await self.run_batch()
                    self.last_run_day = day
                except Exception:
                    log.exception("letter batch failed; will retry")
            await wait_set(self._stopping, self.settings.letter_batch_poll_s)

    async def run_batch(
        self, *, limit: int = 100_000, progress: Callable[[int, int], None] | None = None
    ) -> BatchResult:
        """Batch every queued letter (up to ``limit`` notices); ``progress(done, total)`` is
        called after each letter written."""
        with self.tracer.start_as_current_span("letter batch") as span:
            result = await self._run_batch(limit, progress, span)
            span.set_attributes(
                {
                    "letter.batch.id": result.batch_id,
                    "letter.batch.letters": result.letters,
                    "letter.batch.notices": result.notices,
                    "letter.batch.held": result.held,
                }
            )
            return result

    async def _run_batch(
        self, limit: int, progress: Callable[[int, int], None] | None, batch_span: Span
    ) -> BatchResult:
        at = self.clock.now()
        batch = batch_id_for(at)
        async with self.session_factory() as session, session.begin():
            rows = (
                await session.execute(_CLAIM, {"n": limit, "lease": BATCH_LEASE_S, "batch": batch})
            ).all()
        result = BatchResult(batch_id=batch)
        # Letters of a batch that died half way: sent if the mail house may have its manifest.
        stale = [r for r in rows if r.batch_id != batch]
        done_elsewhere = [r for r in stale if (self.root / r.batch_id / MANIFEST).exists()]
        if done_elsewhere:
            letter_ids: dict[str, str] = {}
            for old in {r.batch_id for r in done_elsewhere}:
                letter_ids |= await asyncio.to_thread(_letter_ids_in, self.root / old / MANIFEST)
            await self._record_sent(done_elsewhere, at, letter_ids=letter_ids)
        taken = {r.notice_id for r in done_elsewhere}
        letters, held = self._letters(batch, [r for r in rows if r.notice_id not in taken])
        result.held = len(held)
        if held:
            async with self.session_factory() as session, session.begin():
                for row, hold in held:
                    await session.execute(
                        _HOLD, {"id": row.notice_id, "st": hold.status, "err": hold.reason or None}
                    )
        if not letters:
            return result
        folder = self.root / batch
        await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
        manifest: list[dict[str, object]] = []
        for i, (letter, rows_of_letter) in enumerate(letters, 1):
            name = f"{letter.letter_id}.pdf"
            with self._letter_span(letter, rows_of_letter, batch_span):
                data, pages = await asyncio.to_thread(self.renderer.pdf, letter, date=at)
                await asyncio.to_thread(_write_atomically, folder / name, data)
            manifest.append(manifest_row(letter, file=name, pages=pages))
            result.files.append(name)
            if progress is not None:
                progress(i, len(letters))
        await asyncio.to_thread(_write_atomically, folder / MANIFEST, manifest_csv(manifest))
        sent_rows = [r for _letter, rs in letters for r in rs]
        letter_ids = {r.notice_id: letter.letter_id for letter, rs in letters for r in rs}
        await self._record_sent(sent_rows, at, batch=batch, letter_ids=letter_ids)
        result.letters, result.notices, result.folder = len(letters), len(sent_rows), folder
        log.info(
            "letter batch written",
            extra={"batch_id": batch, "letters": result.letters, "notices": result.notices},
        )
        return result

    def _letter_span(
        self, letter: Letter, rows: list[Any], batch_span: Span
    ) -> AbstractContextManager[Span]:
        """The ``letter write`` span: a child in the trace of the letter's first traced notice
        (else of the batch's), linked to the batch and to its other notices' traces."""
        contexts = [c for c in map(send_parent, rows) if c is not None]
        parent = contexts[0] if contexts else trace.set_span_in_context(batch_span)
        links = [Link(batch_span.get_span_context())] if contexts else []
        links += [Link(trace.get_current_span(c).get_span_context()) for c in contexts[1:]]
        return self.tracer.start_as_current_span(
            "letter write",
            context=parent,
            links=links,
            attributes={
                "letter.id": letter.letter_id,
                "notice.ids": [r.notice_id for r in rows],
            },
        )

    def _letters(
        self, batch: str, rows: list[Any]
    ) -> tuple[list[tuple[Letter, list[Any]]], list[tuple[Any, Hold]]]:
        """The claimed notices as letters, one per recipient, and those that are not sent."""
        by_customer: dict[str, list[Any]] = {}
        held: list[tuple[Any, Hold]] = []
        for row in rows:
            decision = decide_letter(
                ClaimedNotice(
                    kind=row.kind,
                    recipient_role=row.recipient_role,
                    alert_status=row.alert_status,
                    responded=bool(row.responded),
                    in_doubt=False,
                    email=None,
                    safety_email=None,
                ),
                has_address=row.postal_address is not None,
                letter_opt_out=bool(row.letter_opt_out),
            )
            if isinstance(decision, Hold) or row.state is None:
                held.append((row, decision if isinstance(decision, Hold) else Hold("cancelled")))
                continue
            by_customer.setdefault(row.recipient_customer_id, []).append(row)
        letters: list[tuple[Letter, list[Any]]] = []
        for customer_id, rs in by_customer.items():
            first = rs[0]
            letters.append(
                (
                    Letter(
                        letter_id=f"{batch}-{len(letters) + 1:06d}",
                        customer_id=customer_id,
                        name=first.name or "",
                        locale=first.locale,
                        address=ev.PostalAddress.model_validate(first.postal_address),
                        notices=[
                            LetterNotice(
                                notice_id=r.notice_id,
                                alert=ev.AlertState.model_validate(r.state),
                                kind=r.kind,
                                recipient_role=r.recipient_role,
                                reminder_no=r.reminder_no,
                            )
                            for r in rs
                        ],
                    ),
                    rs,
                )
            )
        return letters, held

    async def _record_sent(
        self,
        rows: list[Any],
        at: datetime,
        batch: str | None = None,
        *,
        letter_ids: dict[str, str],
    ) -> None:
        async with self.session_factory() as session, session.begin():
            for row in rows:
                batch_id = batch or row.batch_id
                done = await session.execute(
                    _SENT,
                    {
                        "id": row.notice_id,
                        "at": at,
                        "to": "postal",
                        "batch": batch_id,
                        "letter": letter_ids.get(row.notice_id),
                    },
                )
                if done.first() is None or row.state is None:
                    continue
                state = ev.AlertState.model_validate(row.state)
                await self.outbox.add(
                    session,
                    ev.NoticeLetterSent(
                        notice_id=row.notice_id,
                        alert_id=row.alert_id,
                        customer_id=row.customer_id,
                        recall_id=state.recall_id,
                        kind=row.kind,
                        alert_version=row.alert_version,
                        **reported_role(row.recipient_role),  # a gift's: on the buyer's behalf
                        batch_id=batch_id,
                        sent_at=at,
                    ),
                    event_id=f"notice:{row.notice_id}:sent",
                )
