"""The sender: claims due notices, renders and sends them over pooled SMTP connections, records
the result with an event.

State machine of a notice (all transitions are committed rows):

    pending --claim--> sending --SMTP 250--> sent     (+ notification.sent.v1)
                         |----4xx / connection error--> pending, retried with exponential backoff
                         |----5xx, or attempts used up--> failed (+ notification.failed.v1)
                         '----lease expired (the sender died)--> in doubt, see below

**A pipeline that keeps every connection busy.** Claimed notices flow through concurrent stages
(:class:`notifier.group_commit.GroupCommitFlow`, which the SMS sender runs on too): the claim and
the load of what rendering needs are one statement, and the next batch is claimed while half of the
current one is still unsent; one preparer renders a few messages per connection ahead of the
senders; one worker per pooled connection sends; one recorder group-commits the outcomes of
everything that finished meanwhile, while the next messages go out. No commit waits on the path
from one SMTP transaction to the next (under at-least-once).

**Exactly once, as far as SMTP allows.** SMTP has no idempotency key and a relay cannot be asked
whether it already took a message, so after a crash between the relay's "250" and our commit of
'sent' nobody can know whether the mail left. Everything short of that window is exactly once: a
notice has one row per (alert, kind, version, recipient, reminder number) and a redelivered event
cannot add a second; a claim is a lease (``FOR UPDATE SKIP LOCKED``), so two senders never hold the
same notice (and a notice still waiting for a connection when its lease ends is not sent by this
sender); 'sending' is committed before the SMTP transaction begins, with the deterministic
Message-ID. A 'sending' notice whose lease expired is *in doubt*, and
``Settings.delivery_guarantee`` decides:

- ``at_least_once`` (default): re-send it, with the identical Message-ID and ``X-Recall-Notice-Id``
  (counted in ``resent_in_doubt``). A duplicate safety notice costs the customer a second look; a
  lost one can cost an injury, so a missing notice is the worse error. Mail systems and the
  customer's client can recognise the duplicate by its Message-ID. In this mode the claim itself
  marks the batch 'sending' (one write per batch, not per message), so "in doubt" also covers a
  crash after the claim but before the send, or after the send but before the group commit.
- ``at_most_once``: the claim only leases; each notice is marked 'sending' in its own transaction
  right before its SMTP transaction, so only a notice whose SMTP transaction may really have started
  is in doubt. It is never re-sent: it becomes 'in_doubt' with a ``notification.failed.v1`` for an
  operator to resolve.

Connection errors once the SMTP transaction started are likewise in doubt (the relay may have taken
the message before the connection broke); at-least-once retries them, at-most-once records them as
in doubt.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Tracer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notifier import remedy_notices
from notifier.bounces import verp_address
from notifier.clock import Clock, SystemClock
from notifier.domain import (
    ClaimedNotice,
    Hold,
    after_send_error,
    contract_kind,
    decide_send,
    is_gift_recipient,
    reported_role,
    retry_delay_s,
)
from notifier.fallback import Unreached, queue_fallback, queue_fallbacks
from notifier.group_commit import GroupCommitFlow
from notifier.handlers import SENDER_CHANNEL, message_id_for
from notifier.notice_traces import send_parent
from notifier.remedy_notices import REMEDY_NOTICE_KINDS
from notifier.remedy_reminders import REMEDY_REMINDER_FIRST
from notifier.render import NoticeRenderer, OutgoingMail, outgoing
from notifier.settings import Settings
from notifier.smtp_pool import MailError, MailTransport, SmtpPool
from recall_shared import events as ev
from recall_shared.db import asyncpg_dsn
from recall_shared.event_ids import event_id
from recall_shared.failures import is_transient
from recall_shared.listening import keep_listening
from recall_shared.logging import current_correlation_id, log_context
from recall_shared.metrics import Metrics
from recall_shared.outbox import Outbox
from recall_shared.waits import wait_set

log = logging.getLogger(__name__)

# The claim and the load in one statement: lease the due notices (under at-least-once also mark them
# 'sending' with their Message-ID) and return what rendering and the checks before sending need.
_DUE = """
    WITH due AS (
        SELECT notice_id, status FROM notices
        WHERE status IN ('pending', 'sending') AND next_attempt_at <= now() AND channel = 'email'
          AND notice_id <> ALL(CAST(:held AS text[]))
        ORDER BY next_attempt_at LIMIT :n FOR UPDATE SKIP LOCKED),
"""
_CLAIMED_ROWS = """
    SELECT c.notice_id, c.attempts, c.was, c.alert_id, c.customer_id, c.recipient_customer_id,
           c.recipient_role, c.kind, c.alert_version, c.reminder_no, a.status AS alert_status,
           a.alert_version AS current_version, a.state,
           ct.name, ct.email, ct.safety_email, ct.locale, ct.phone, ct.sms_opt_out,
           a.state -> 'recall' ->> 'severity' AS severity,
           EXISTS (SELECT 1 FROM alert_responses r WHERE r.alert_id = c.alert_id) AS responded,
           to_jsonb(rn) AS remedy, rn.case_id AS remedy_case_id,
           a.state ->> 'recall_version' AS current_recall_version,
           c.traceparent, c.tracestate
    FROM claimed c
    LEFT JOIN alerts a ON a.alert_id = c.alert_id
    LEFT JOIN contacts ct ON ct.customer_id = c.recipient_customer_id
    LEFT JOIN remedy_notices rn ON rn.notice_id = c.notice_id
"""
_CLAIM_AT_LEAST_ONCE = text(
    _DUE
    + """
    claimed AS (
        UPDATE notices n SET attempts = n.attempts + 1,
            next_attempt_at = now() + make_interval(secs => :lease),
            status = 'sending', sending_at = now(),
            message_id = '<' || n.notice_id || '@recall-alerts.notices>',
            resent_in_doubt = n.resent_in_doubt + CASE WHEN due.status = 'sending' THEN 1 ELSE 0 END
        FROM due WHERE n.notice_id = due.notice_id
        RETURNING n.*, due.status AS was)
    """
    + _CLAIMED_ROWS
)
_CLAIM_AT_MOST_ONCE = text(
    _DUE
    + """
    claimed AS (
        UPDATE notices n SET attempts = n.attempts + 1,
            next_attempt_at = now() + make_interval(secs => :lease)
        FROM due WHERE n.notice_id = due.notice_id
        RETURNING n.*, due.status AS was)
    """
    + _CLAIMED_ROWS
)
_MARK_SENDING = text(
    """
    UPDATE notices SET status = 'sending', sending_at = now(), message_id = :mid
    WHERE notice_id = :id AND attempts = :attempt AND status = 'pending'
    RETURNING notice_id
    """
)
_RECORD_SENT = text(
    """
    UPDATE notices n
    SET status = 'sent', sent_at = v.sent_at, sent_to = v.sent_to, last_error = NULL
    FROM (SELECT unnest(CAST(:ids AS text[])) AS notice_id, unnest(CAST(:tos AS text[])) AS sent_to,
                 unnest(CAST(:ats AS timestamptz[])) AS sent_at) v
    WHERE n.notice_id = v.notice_id AND n.status = 'sending'
    RETURNING n.notice_id
    """
)
# Notices without an address (waiting for a contact), held in one statement: only those still
# pending or in a claim, as one at a time did.
_HOLD_WAITING = text(
    """
    UPDATE notices n SET status = 'waiting_contact', last_error = v.err
    FROM unnest(CAST(:ids AS text[]), CAST(:errs AS text[])) AS v(notice_id, err)
    WHERE n.notice_id = v.notice_id AND n.status IN ('pending', 'sending')
    RETURNING n.notice_id
    """
)
_START_REMINDERS = text(
    """
    INSERT INTO reminders (alert_id, recipient_customer_id, customer_id, recipient_role, base_at,
                           next_no, next_due_at)
    SELECT * FROM unnest(CAST(:alert_ids AS text[]), CAST(:recipients AS text[]),
                         CAST(:customers AS text[]), CAST(:roles AS text[]),
                         CAST(:bases AS timestamptz[]), CAST(:nos AS int[]),
                         CAST(:dues AS timestamptz[]))
    ON CONFLICT DO NOTHING
    """
)

FaultHook = Callable[[str, str], Awaitable[None]]

# Group commit of outcomes: the recorder waits up to this long after the first outcome for more to
# join (fewer, larger transactions; sending goes on meanwhile), less once nothing is in flight.
_RECORD_LINGER_S = 0.05
_STATES_CACHED = 1000  # alert states parsed per flow, then forgotten
_RECORD_BACKOFF_MAX_S = 5.0
_CLAIM_ATTEMPT_TIMEOUT_S = 30.0


@dataclass
class _Job:
    notice_id: str
    attempt: int
    in_doubt: bool  # the previous attempt was interrupted after 'sending' was recorded
    row: Any
    lease_ends: float  # monotonic: after this another sender may hold the notice
    prepared: _Prepared | None = None  # set by the preparer when the notice is to be sent


@dataclass
class _Prepared:
    """A notice rendered and addressed, waiting for a connection."""

    message: OutgoingMail
    to: str
    role: str
    state: ev.AlertState


@dataclass
class _Outcome:
    job: _Job
    # sent | retry | failed | in_doubt | cancelled | waiting_contact | superseded | released
    status: str
    at: datetime
    to: str = ""
    role: str = ""
    reason: str = ""
    permanent: bool = False
    state: ev.AlertState | None = None


class NoticeSender:
    def __init__(
        self,
        *,
        settings: Settings,
        session_factory: async_sessionmaker[AsyncSession],
        outbox: Outbox,
        metrics: Metrics,
        transport: MailTransport,
        clock: Clock | None = None,
        fault: FaultHook | None = None,
        tracer: Tracer | None = None,
        sms_available: bool = False,
    ) -> None:
        self.settings = settings
        # A span per SMTP transaction when tracing is on (recall_shared.telemetry).
        self.tracer = tracer or trace.NoOpTracer()
        self.sms_available = sms_available  # an SMS channel to fall back to (notifier.fallback)
        self.session_factory = session_factory
        self.outbox = outbox
        self.metrics = metrics
        self.transport = transport
        self.clock = clock or SystemClock()
        # Fault injection for tests: awaited at "claimed", "marked" and "sent" per notice.
        self.fault = fault
        self.renderer = NoticeRenderer(settings.customer_portal_url)
        # Derived from the settings once (an HMAC and an address parse), not per message.
        self._bounce_mailbox = settings.bounce_mailbox
        self._verp_key = settings.verp_key
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        # Claimed by this sender's flow and not yet recorded: never claimed again by it, even once
        # its lease ran out (a database outage held the record back), as the mail may be out.
        self._held: set[str] = set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    def _flow(self) -> GroupCommitFlow[_Job, _Outcome]:
        """Claimed notices through the pipeline (:class:`notifier.group_commit.GroupCommitFlow`):
        one preparer decides and renders just ahead of the connections, one worker per pooled
        connection sends, one recorder group-commits the outcomes while the next messages go
        out. What it held before is left to its lease."""
        self._held.clear()
        states: dict[tuple[str, int, str], ev.AlertState] = {}

        async def prepare(job: _Job) -> _Outcome | None:
            if len(states) > _STATES_CACHED:
                states.clear()
            return await self._prepare(job, states)

        return GroupCommitFlow(
            workers=self.settings.smtp_concurrency,
            prepare=prepare,
            work=self._send,
            record=self._record_then_release,
            name="notices",
            linger_s=_RECORD_LINGER_S,
            what="notice outcomes",
        )

    async def run(self, _runtime: object = None) -> None:
        try:
            await keep_listening(
                asyncpg_dsn(self.settings.database_url),
                SENDER_CHANNEL,
                self._flow_until_stopped,
                on_notify=self._wake.set,
                stopping=self._stopping,
                name="notice sender",
                logger=log,
                retry_initial_s=1.0,
                retry_max_s=2.0,
            )
        finally:
            close = getattr(self.transport, "close", None)
            if close is not None and self._stopping.is_set():
                with contextlib.suppress(Exception):
                    await close()

    async def _flow_until_stopped(self, listener: asyncpg.Connection) -> None:
        """Claim whenever fewer than half a batch is left unsent, so the next batch is claimed and
        loaded while the previous one still keeps every connection busy. On stop, what is claimed
        is still sent and recorded."""
        batch = self.settings.send_batch_size

        async def claim(flow: GroupCommitFlow[_Job, _Outcome]) -> None:
            while not self._stopping.is_set() and not listener.is_closed():
                await flow.below(batch // 2)
                if self._stopping.is_set():
                    break
                self._wake.clear()
                claimed = await self._claim_waiting_out_outages(flow, batch, listener)
                if claimed:
                    continue
                await wait_set(self._wake, self.settings.sender_poll_s)

        await self._flow().run(claim)

    async def send_due(self, limit: int | None = None) -> int:
        """Claim up to ``limit`` due notices, send them, record the results; returns how many were
        claimed."""
        claimed = 0

        async def claim(flow: GroupCommitFlow[_Job, _Outcome]) -> None:
            nonlocal claimed
            claimed = await self._claim_into(flow, limit or self.settings.send_batch_size)

        await self._flow().run(claim)
        return claimed

    async def _claim_waiting_out_outages(
        self, flow: GroupCommitFlow[_Job, _Outcome], limit: int, listener: asyncpg.Connection
    ) -> int:
        """Claim, waiting out a database outage while the flow goes on: the mails in flight are
        still sent and their outcomes recorded (the recorder waits too). Ending the flow instead
        would leave them unrecorded, to be sent again when their lease ends. An attempt that
        hangs is cut off and tried again; an error that is not the database's is raised."""
        delay = 0.2
        while not self._stopping.is_set() and not listener.is_closed():
            try:
                async with asyncio.timeout(_CLAIM_ATTEMPT_TIMEOUT_S):
                    return await self._claim_into(flow, limit)
            except Exception as exc:
                if not (is_transient(exc) or isinstance(exc, TimeoutError)):
                    raise
                log.warning(
                    "claiming notices failed; retrying",
                    exc_info=True,
                    extra={"retry_in_s": delay, "unsent": flow.unfinished},
                )
                await wait_set(self._stopping, delay)
                delay = min(delay * 2, _RECORD_BACKOFF_MAX_S)
        return 0

    async def _claim_into(self, flow: GroupCommitFlow[_Job, _Outcome], limit: int) -> int:
        at_most_once = self.settings.delivery_guarantee == "at_most_once"
        lease = self.settings.send_lease_s
        async with self.session_factory() as session, session.begin():
            lease_ends = time.monotonic() + lease
            rows = (
                await session.execute(
                    _CLAIM_AT_MOST_ONCE if at_most_once else _CLAIM_AT_LEAST_ONCE,
                    {"lease": lease, "n": limit, "held": list(self._held)},
                )
            ).all()
        # A notice without its alert (never the case: both come with it) is left to its lease.
        jobs = [
            _Job(r.notice_id, r.attempts, r.was == "sending", r, lease_ends)
            for r in rows
            if r.state is not None
        ]
        self._held.update(j.notice_id for j in jobs)
        flow.feed(jobs)
        return len(rows)

    async def _prepare(
        self, job: _Job, states: dict[tuple[str, int, str], ev.AlertState]
    ) -> _Outcome | None:
        """Decide whether the notice is still to be sent, and render it (off the connections'
        path): its outcome if it is not to be sent, else None (``job.prepared`` is set)."""
        row = job.row
        at_most_once = self.settings.delivery_guarantee == "at_most_once"
        if self.fault is not None:
            await self.fault("claimed", job.notice_id)
        if job.in_doubt:
            log.warning(
                "notice delivery in doubt: its sender stopped mid-send",
                extra={"notice_id": job.notice_id, "guarantee": self.settings.delivery_guarantee},
            )
        decision = decide_send(
            ClaimedNotice(
                kind=row.kind,
                recipient_role=row.recipient_role,
                alert_status=row.alert_status,
                # A customer's response stops the choose-a-remedy reminders, not a remedy's own
                # (issue 14).
                responded=bool(row.responded) and row.reminder_no < REMEDY_REMINDER_FIRST,
                in_doubt=job.in_doubt,
                email=row.email,
                safety_email=row.safety_email,
            ),
            at_most_once=at_most_once,
        )
        if isinstance(decision, Hold):
            return _Outcome(
                job,
                decision.status,
                self.clock.now(),
                reason=decision.reason,
                permanent=decision.final,
                state=self._state(row, states) if decision.final else None,
            )
        to = decision.to
        state = self._state(row, states)
        if row.kind in REMEDY_NOTICE_KINDS:  # a case's label, refund or replacement (issue 14)
            rendered = remedy_notices.render(
                self.renderer,
                state,
                row.remedy,
                kind=row.kind,
                locale=row.locale,
                recipient_name=row.name or "",
            )
        else:
            kind: ev.NoticeKind = row.kind
            rendered = self.renderer.render(
                state,
                kind=kind,
                locale=row.locale,
                recipient_name=row.name or "",
                recipient_role=row.recipient_role,
                reminder_no=row.reminder_no,
            )
        try:
            message = outgoing(
                rendered,
                to=to,
                name=row.name or "",
                mail_from=self.settings.mail_from,
                message_id=message_id_for(job.notice_id),
                notice_id=job.notice_id,
            )
        except ValueError as exc:  # an address that cannot be written into a header
            return _Outcome(
                job, "failed", self.clock.now(), reason=str(exc), permanent=True, state=state
            )
        # Its own return path (VERP): a bounce names the notice whatever it quotes of it.
        message.sender = verp_address(self._bounce_mailbox, job.notice_id, self._verp_key)
        job.prepared = _Prepared(message, to, decision.role, state)
        return None

    async def _send(self, job: _Job) -> _Outcome:
        """One SMTP transaction (on the connection this worker holds) and what came of it."""
        ready = job.prepared
        assert ready is not None, "sent before it was prepared"
        state = ready.state
        at_most_once = self.settings.delivery_guarantee == "at_most_once"
        if time.monotonic() >= job.lease_ends:
            # Waited past its lease (a very slow relay): another sender may hold it by now, so it
            # is not sent here but released, unless it was claimed again meanwhile.
            return _Outcome(job, "released", self.clock.now())
        try:
            with self.tracer.start_as_current_span(
                "smtp send",
                context=send_parent(job.row),  # the recall's trace (notifier.notice_traces)
                kind=SpanKind.CLIENT,
                attributes={"notice.id": job.notice_id, "server.address": self.settings.smtp_host},
            ):
                await self._deliver(job, ready.message, at_most_once)
        except _Superseded:
            return _Outcome(job, "superseded", self.clock.now())
        except MailError as exc:
            next_state = after_send_error(
                permanent=exc.permanent,
                in_doubt=exc.in_doubt,
                at_most_once=at_most_once,
                attempt=job.attempt,
                max_attempts=self.settings.send_max_attempts,
            )
            reason = str(exc)
            if next_state == "in_doubt":
                reason = f"delivery in doubt: {exc}; not re-sent (delivery_guarantee=at_most_once)"
            return _Outcome(
                job,
                next_state,
                self.clock.now(),
                role=ready.role,
                reason=reason,
                permanent=exc.permanent or next_state == "in_doubt",
                state=state,
            )
        if self.fault is not None:
            await self.fault("sent", job.notice_id)
        return _Outcome(job, "sent", self.clock.now(), to=ready.to, role=ready.role, state=state)

    async def _deliver(self, job: _Job, message: OutgoingMail, at_most_once: bool) -> None:
        if not at_most_once:
            await self.transport.send(message)  # 'sending' was recorded by the claim
            return
        pool: SmtpPool | None = getattr(self.transport, "pool", None)
        if pool is None:
            await self._mark_sending(job)
            await self.transport.send(message)
            return
        # At most once: hold the connection first, so 'sending' is recorded as close to the SMTP
        # transaction as possible and a crash while waiting for a connection is not "in doubt".
        async with pool.connection() as conn:
            await self._mark_sending(job)
            await pool.send_on(conn, message)

    async def _mark_sending(self, job: _Job) -> None:
        async with self.session_factory() as session, session.begin():
            marked = (
                await session.execute(
                    _MARK_SENDING,
                    {
                        "id": job.notice_id,
                        "attempt": job.attempt,
                        "mid": message_id_for(job.notice_id),
                    },
                )
            ).first()
        if marked is None:
            raise _Superseded(job.notice_id)  # another sender took it over, or it was cancelled
        if self.fault is not None:
            await self.fault("marked", job.notice_id)

    @staticmethod
    def _state(row: Any, cache: dict[tuple[str, int, str], ev.AlertState]) -> ev.AlertState:
        # An amendment changes the content, not the alert version: the recall version tells.
        key = (row.alert_id, row.current_version, row.current_recall_version)
        if key not in cache:
            cache[key] = ev.AlertState.model_validate(row.state)
        return cache[key]

    # ------------------------------------------------------------------ recording

    async def _record_then_release(self, outcomes: list[_Outcome]) -> None:
        """Record the batch (the flow waits a database outage out: the mails are out, giving up
        would make them "in doubt" and, under at-least-once, sent twice); once committed, its
        notices may be claimed again."""
        await self._record(outcomes)
        self._held.difference_update(o.job.notice_id for o in outcomes)

    async def _record(self, outcomes: list[_Outcome]) -> None:
        """All outcomes of a batch in one transaction (a group commit)."""
        sent = [o for o in outcomes if o.status == "sent"]
        other = [o for o in outcomes if o.status != "sent"]
        if not outcomes:
            return
        # One correlation id for the group commit: its events and its lines carry the same.
        with log_context(correlation_id=current_correlation_id()):
            async with self.session_factory() as session, session.begin():
                if sent:
                    await self._record_sent(session, sent)
                waiting = [o for o in other if o.status == "waiting_contact"]
                if waiting:
                    await self._record_waiting(session, waiting)
                for o in other:
                    if o.status != "waiting_contact":
                        await self._record_other(session, o)
            for o in sent:
                _log_sent(o)

    async def _record_sent(self, session: AsyncSession, sent: list[_Outcome]) -> None:
        recorded = set(
            (
                await session.execute(
                    _RECORD_SENT,
                    {
                        "ids": [o.job.notice_id for o in sent],
                        "tos": [o.to for o in sent],
                        "ats": [o.at for o in sent],
                    },
                )
            ).scalars()
        )
        events: list[tuple[ev.Event, str | None]] = []
        reminders = []
        for o in sent:
            if o.job.notice_id not in recorded:
                continue
            row, state = o.job.row, o.state
            assert state is not None
            if row.kind in REMEDY_NOTICE_KINDS:
                sent_event = remedy_notices.status_event(
                    row, recall_id=state.recall_id, status="sent", at=o.at, role=o.role
                )
                events.append((sent_event, sent_event_id(o.job.notice_id)))
                continue
            events.append(
                (
                    ev.NoticeSent(
                        notice_id=o.job.notice_id,
                        alert_id=row.alert_id,
                        customer_id=row.customer_id,
                        recall_id=state.recall_id,
                        kind=contract_kind(row.kind),
                        alert_version=row.alert_version,
                        **reported_role(o.role),  # a gift recipient: on the purchaser's behalf
                        sent_at=o.at,
                    ),
                    sent_event_id(o.job.notice_id),
                )
            )
            if row.kind == "initial" and self.settings.reminder_schedule_days:
                reminders.append(o)
        if events:
            await self.outbox.add_many(session, events)
        if reminders:
            first = timedelta(days=self.settings.reminder_schedule_days[0])
            await session.execute(
                _START_REMINDERS,
                {
                    "alert_ids": [o.job.row.alert_id for o in reminders],
                    "recipients": [o.job.row.recipient_customer_id for o in reminders],
                    "customers": [o.job.row.customer_id for o in reminders],
                    "roles": [o.job.row.recipient_role for o in reminders],
                    "bases": [o.at for o in reminders],
                    "nos": [1] * len(reminders),
                    "dues": [o.at + first for o in reminders],
                },
            )

    async def _record_waiting(self, session: AsyncSession, waiting: list[_Outcome]) -> None:
        """Notices without an address, held in one statement and their next channel's notices
        queued in one more (a claim of notices to customers with only a phone was two statements
        per notice, which held the first SMS of a batch back by most of a second)."""
        held = set(
            (
                await session.execute(
                    _HOLD_WAITING,
                    {
                        "ids": [o.job.notice_id for o in waiting],
                        "errs": [o.reason or None for o in waiting],
                    },
                )
            ).scalars()
        )
        await queue_fallbacks(
            session,
            [_unreached(o) for o in waiting if o.job.notice_id in held],
            sms_available=self.sms_available,
            letters_available=self.settings.letters_available,
        )

    async def _record_other(self, session: AsyncSession, o: _Outcome) -> None:
        nid, row = o.job.notice_id, o.job.row
        if o.status == "superseded":
            return
        if o.status == "released":
            await session.execute(
                text(
                    "UPDATE notices SET status = 'pending', next_attempt_at = now() "
                    "WHERE notice_id = :id AND attempts = :attempt "
                    "AND status IN ('pending', 'sending')"
                ),
                {"id": nid, "attempt": o.job.attempt},
            )
            return
        if o.status == "cancelled":  # (waiting_contact: _record_waiting, for a batch at once)
            await session.execute(
                text(
                    "UPDATE notices SET status = :st, last_error = :err WHERE notice_id = :id "
                    "AND status IN ('pending', 'sending')"
                ),
                {"st": o.status, "err": o.reason or None, "id": nid},
            )
            return
        if o.status == "retry":
            delay = retry_delay_s(
                o.job.attempt,
                initial_s=self.settings.send_backoff_initial_s,
                max_s=self.settings.send_backoff_max_s,
                jitter=random.uniform(0.9, 1.1),
            )
            await session.execute(
                text(
                    "UPDATE notices SET status = 'pending', last_error = :err, "
                    "next_attempt_at = now() + make_interval(secs => :delay) WHERE notice_id = :id "
                    "AND status IN ('pending', 'sending')"
                ),
                {"err": o.reason[:2000], "delay": delay, "id": nid},
            )
            log.warning(
                "notice send failed; will retry",
                extra={"notice_id": nid, "error": o.reason, "retry_in_s": delay},
            )
            return
        # failed for good, or in doubt under at-most-once
        result = await session.execute(
            text(
                "UPDATE notices SET status = :st, last_error = :err WHERE notice_id = :id "
                "AND status IN ('pending', 'sending') RETURNING notice_id"
            ),
            {"st": o.status, "err": o.reason[:2000], "id": nid},
        )
        if result.first() is None or o.state is None:
            return
        if o.status == "failed" and o.permanent:
            await self._fall_back(session, o)  # refused for good: the next channel, if any
        if row.kind in REMEDY_NOTICE_KINDS:
            failed_event = remedy_notices.status_event(
                row, recall_id=o.state.recall_id, status="failed", at=o.at, reason=o.reason
            )
            await self.outbox.add(session, failed_event, event_id=event_id("notice", nid, "failed"))
            return
        await self.outbox.add(
            session,
            ev.NoticeFailed(
                notice_id=nid,
                alert_id=row.alert_id,
                customer_id=row.customer_id,
                recall_id=o.state.recall_id,
                kind=contract_kind(row.kind),
                alert_version=row.alert_version,
                reason=o.reason[:2000],
                permanent=o.permanent,
                gift_recipient=is_gift_recipient(o.role),
                failed_at=o.at,
            ),
            event_id=event_id("notice", nid, "failed"),
        )
        log.error(
            "notice failed for good",
            extra={"notice_id": nid, "error": o.reason, "status": o.status},
        )

    async def _fall_back(self, session: AsyncSession, o: _Outcome) -> None:
        await queue_fallback(
            session,
            _unreached(o),
            sms_available=self.sms_available,
            letters_available=self.settings.letters_available,
        )


def _unreached(o: _Outcome) -> Unreached:
    return Unreached.of(o.job.row, notice_id=o.job.notice_id)


class _Superseded(Exception):
    pass


def sent_event_id(notice_id: str) -> str:
    """The id of a notice's NoticeSent event (deterministic: a second record of it is a no-op)."""
    return f"notice:{notice_id}:sent"


def _log_sent(o: _Outcome) -> None:
    """The "notice sent" line: the notice, and the event and correlation id it was announced with
    (the correlation id comes from the context)."""
    log.info(
        "notice sent",
        extra={
            "event_id": sent_event_id(o.job.notice_id),
            "notice_id": o.job.notice_id,
            "alert_id": o.job.row.alert_id,
            "kind": o.job.row.kind,
            "resent_in_doubt": o.job.in_doubt,
        },
    )
