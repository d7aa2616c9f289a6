"""A group consumer on the KIP-848 consumer group protocol (``group.protocol=consumer``), behind
the part of aiokafka's ``AIOKafkaConsumer`` that :class:`~recall_shared.consumer.ConsumerRunner`
uses, so the runner works unchanged on either protocol (see docs/decisions/0013).

Under the new protocol the broker computes the assignment (its ``range`` assignor here) and moves
partitions incrementally: a member that keeps a partition goes on applying it through a rebalance,
and the revoke callback sees only the partitions that move. aiokafka 0.14 speaks only the classic
protocol, so this adapter runs confluent-kafka (librdkafka).

librdkafka's ``consume()`` blocks, and its rebalance callbacks run inside it, so the consumer lives
on a thread of its own. A revoke callback hands the revoked partitions to the runner's listener on
the event loop and holds the rebalance until the listener returns: the runner's workers finish the
batch in hand and commit it (the commits run on the consumer thread, served while the callback
waits) before librdkafka gives the partitions up. Callbacks only run inside ``getmany()``, so
between two polls the assignment stays as ``assignment()`` says.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from aiokafka import ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaConnectionError
from confluent_kafka import OFFSET_INVALID, Consumer, KafkaError, KafkaException, Message
from confluent_kafka import TopicPartition as NativePartition

log = logging.getLogger(__name__)
librdkafka_log = logging.getLogger("recall_shared.librdkafka")


class LibrdkafkaLog:
    """Where confluent-kafka sends librdkafka's log lines (its ``logger`` setting): into
    ``recall_shared.librdkafka``, one message per facility (``librdkafka FAIL``...) with the text
    as ``detail``, so the repeat filter (``recall_shared.quiet_logs``) counts an outage's
    reconnect errors instead of printing each."""

    def log(self, level: int, fmt: str, *args: object) -> None:
        facility, client, text = (*map(str, args), "", "", "")[:3]
        librdkafka_log.log(
            level, f"librdkafka {facility}", extra={"client": client, "detail": text}
        )


# Settings the consumer protocol refuses (the broker owns the session, heartbeat and assignment).
REFUSED_UNDER_CONSUMER_PROTOCOL = frozenset(
    {"session.timeout.ms", "heartbeat.interval.ms", "partition.assignment.strategy"}
)

# Commit errors that pass (the coordinator moving or out of reach): waited out by the runner.
_COMMIT_TRANSIENT = {
    KafkaError._TRANSPORT,
    KafkaError._TIMED_OUT,
    KafkaError._WAIT_COORD,
    KafkaError._ALL_BROKERS_DOWN,
    KafkaError.COORDINATOR_NOT_AVAILABLE,
    KafkaError.NOT_COORDINATOR,
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    KafkaError.REQUEST_TIMED_OUT,
    KafkaError.NETWORK_EXCEPTION,
}


# consume() runs in slices this long, so a command of the loop waits at most that for the thread.
_SLICE_S = 0.05
# How long start() waits for a broker to answer (aiokafka's start() fails likewise).
_CONNECT_TIMEOUT_S = 10.0
# A request made on the consumer thread outside a rebalance (a start position): short, since the
# runner's commits wait behind it.
_LOOKUP_TIMEOUT_S = 2.0


@dataclass(frozen=True, slots=True)
class FetchedRecord:
    """A fetched record with the attributes the runner reads of aiokafka's ``ConsumerRecord``."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]]

    @classmethod
    def of(cls, msg: Message) -> FetchedRecord:
        # A consumed message's headers are a list of pairs (a value may be None).
        headers = cast(list[tuple[str, bytes | None]], msg.headers() or [])
        return cls(
            msg.topic() or "",
            msg.partition() or 0,
            msg.offset() or 0,
            msg.key(),
            msg.value(),
            [(k, v or b"") for k, v in headers],
        )


def _native(tp: TopicPartition, offset: int = OFFSET_INVALID) -> NativePartition:
    return NativePartition(tp.topic, tp.partition, offset)


def _ours(parts: Iterable[NativePartition]) -> set[TopicPartition]:
    return {TopicPartition(p.topic, p.partition) for p in parts}


class CooperativeConsumer:
    """confluent-kafka's Consumer on the consumer group protocol, as the runner sees a consumer.

    Every call into librdkafka is made on one thread of its own: while a rebalance callback runs,
    a call from any other thread blocks until the callback returns (measured with confluent-kafka
    2.16), so the revoke callback could never wait for the runner's commits if they were made
    elsewhere. The event loop hands that thread commands; a callback waiting for the runner
    serves them meanwhile. The calls the runner makes without awaiting (pause, resume, seek) are
    queued in order; ``assignment()`` and ``highwater()`` read what the thread last saw.
    """

    def __init__(
        self,
        topics: Iterable[str],
        config: dict[str, Any],
        *,
        connect_timeout_s: float = _CONNECT_TIMEOUT_S,
    ) -> None:
        refused = REFUSED_UNDER_CONSUMER_PROTOCOL & config.keys()
        if refused:
            raise ValueError(f"not settable under group.protocol=consumer: {sorted(refused)}")
        # librdkafka's own log lines go through logging (JSON like the rest), not to stderr.
        self.config = {"logger": LibrdkafkaLog(), **config, "group.protocol": "consumer"}
        self.topics = list(topics)
        self.connect_timeout_s = connect_timeout_s
        self._listener: ConsumerRebalanceListener | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._consumer: Consumer | None = None  # touched on the consumer thread only
        self._commands: queue.SimpleQueue[_Command | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        # Partitions assigned and not being revoked (records of any other are dropped), and their
        # last high watermarks: written by the consumer thread, each replaced whole.
        self._owned: frozenset[TopicPartition] = frozenset()
        self._highwater: dict[TopicPartition, int] = {}
        # Where a partition starts, until a record of it is fetched (consumer thread only).
        self._starts: dict[TopicPartition, int] = {}

    # ------------------------------------------------------------------ lifecycle

    def subscribe(
        self, topics: Iterable[str], *, listener: ConsumerRebalanceListener | None = None
    ) -> None:
        self.topics = list(topics)
        self._listener = listener

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(
            target=self._serve, name=f"kafka-{self.config.get('group.id')}", daemon=True
        )
        self._thread.start()
        try:
            await self._call(self._open)
        except BaseException:
            self._commands.put(None)
            self._thread = None
            raise

    async def stop(self) -> None:
        if self._thread is None:
            return
        try:
            # close() leaves the group at once (no session timeout for the others to wait out);
            # its revoke callback reaches the listener, which has nothing left to release by then.
            await self._call(self._close)
        finally:
            self._commands.put(None)
            self._thread = None

    # ------------------------------------------------------------------ the consumer thread

    def _serve(self) -> None:
        while (command := self._commands.get()) is not None:
            command.run()

    def _serve_until(self, done: concurrent.futures.Future[Any]) -> None:
        """Run the commands that come in until ``done`` (on the consumer thread, in a callback)."""
        while not done.done():
            try:
                command = self._commands.get(timeout=0.02)
            except queue.Empty:
                continue
            if command is None:
                self._commands.put(None)  # stopping: leave it for the loop in _serve
                return
            command.run()

    def _serve_pending(self) -> None:
        while True:
            try:
                command = self._commands.get_nowait()
            except queue.Empty:
                return
            if command is None:
                self._commands.put(None)
                return
            command.run()

    def _call(self, fn: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        if self._thread is None:  # nobody would ever run it
            raise IllegalStateError("consumer not started")
        command = _Command(fn, args)
        self._commands.put(command)
        return asyncio.wrap_future(command.future)

    def _queue(self, fn: Callable[..., Any], *args: Any) -> None:
        self._commands.put(_Command(fn, args, quiet=True))

    @property
    def native(self) -> Consumer:
        if self._consumer is None:
            raise IllegalStateError("consumer not started")
        return self._consumer

    def _open(self) -> None:
        consumer = Consumer(self.config)
        try:
            # librdkafka connects in the background; like aiokafka's start(), fail while no broker
            # answers, so the runner retries and /readyz says why.
            consumer.list_topics(timeout=self.connect_timeout_s)
        except KafkaException as exc:
            consumer.close()
            raise KafkaConnectionError(f"no broker answers: {exc}") from exc
        consumer.subscribe(
            self.topics, on_assign=self._assigned, on_revoke=self._revoked, on_lost=self._lost
        )
        self._consumer = consumer

    def _close(self) -> None:
        if self._consumer is not None:
            try:
                self._consumer.close()  # its revoke callback may still commit: keep it usable
            finally:
                self._consumer = None

    # ------------------------------------------------------------------ rebalance callbacks
    # They run on the consumer thread, inside consume() (or close()).

    def _call_listener(self, method: str, parts: set[TopicPartition]) -> None:
        if self._listener is None or self._loop is None:
            return
        callback = getattr(self._listener, method)
        future = asyncio.run_coroutine_threadsafe(callback(parts), self._loop)
        self._serve_until(future)  # the rebalance waits for the runner, whose calls run here
        # What the listener queued before it returned (seeks of the partitions kept) is done
        # before the poll goes on, so no record fetched before a seek reaches the runner.
        self._serve_pending()
        try:
            future.result()
        except concurrent.futures.CancelledError:
            log.warning("rebalance listener cancelled", extra={"callback": method})

    def _assigned(self, consumer: Consumer, parts: list[NativePartition]) -> None:
        added = _ours(parts)
        if not added:
            return  # the empty assignment that follows a revocation
        consumer.incremental_assign(parts)
        self._owned = self._owned | added
        for tp in added:
            self._starts.pop(tp, None)
        self._call_listener("on_partitions_assigned", added)

    def _revoked(self, consumer: Consumer, parts: list[NativePartition]) -> None:
        self._give_up(consumer, parts)

    def _lost(self, consumer: Consumer, parts: list[NativePartition]) -> None:
        # Fenced (the session expired): the partitions may be another member's already; the
        # runner's commits for them are refused and the inbox absorbs the redelivery.
        log.warning("partitions lost", extra={"partitions": sorted(map(str, _ours(parts)))})
        self._give_up(consumer, parts)

    def _give_up(self, consumer: Consumer, parts: list[NativePartition]) -> None:
        revoked = _ours(parts)
        self._owned = self._owned - revoked
        for tp in revoked:
            self._starts.pop(tp, None)
        try:
            if revoked:
                self._call_listener("on_partitions_revoked", revoked)
        finally:
            consumer.incremental_unassign(parts)

    # ------------------------------------------------------------------ fetching

    async def getmany(
        self, *, timeout_ms: int = 0, max_records: int | None = None
    ) -> dict[TopicPartition, list[FetchedRecord]]:
        """Up to ``max_records`` records of the assigned partitions, by partition: as soon as
        some have arrived, or none after ``timeout_ms``."""
        result: dict[TopicPartition, list[FetchedRecord]] = await self._call(
            self._poll, max_records or 500, timeout_ms / 1000
        )
        return result

    def _poll(
        self, max_records: int, timeout_s: float
    ) -> dict[TopicPartition, list[FetchedRecord]]:
        consumer = self.native
        deadline = time.monotonic() + timeout_s
        batches: dict[TopicPartition, list[FetchedRecord]] = {}
        while True:
            # Short slices, so the commands of the loop (commits above all) never wait long.
            messages = consumer.consume(max_records, _SLICE_S)
            for msg in messages:
                error = msg.error()
                if error is not None:
                    if error.fatal():
                        raise KafkaException(error)
                    log.warning("consumer error", extra={"error": str(error)})
                    continue
                tp = TopicPartition(msg.topic() or "", msg.partition() or 0)
                # A record fetched before its partition was revoked in the same poll: not ours.
                if tp in self._owned:
                    batches.setdefault(tp, []).append(FetchedRecord.of(msg))
            if batches or time.monotonic() >= deadline:
                break
            self._serve_pending()
        self._note_highwater(consumer)
        return batches

    def _note_highwater(self, consumer: Consumer) -> None:
        marks: dict[TopicPartition, int] = {}
        for tp in self._owned:
            with contextlib.suppress(KafkaException):
                _, high = consumer.get_watermark_offsets(_native(tp), cached=True)
                if high is not None and high >= 0:
                    marks[tp] = high
        self._highwater = marks

    def assignment(self) -> set[TopicPartition]:
        return set(self._owned)

    def highwater(self, partition: TopicPartition) -> int | None:
        """The last high watermark fetched (no request)."""
        return self._highwater.get(partition)

    def pause(self, *partitions: TopicPartition) -> None:
        self._queue(lambda: self.native.pause([_native(tp) for tp in partitions]))

    def resume(self, *partitions: TopicPartition) -> None:
        self._queue(lambda: self.native.resume([_native(tp) for tp in partitions]))

    def seek(self, partition: TopicPartition, offset: int) -> None:
        self._queue(self._seek, partition, offset)

    def _seek(self, tp: TopicPartition, offset: int) -> None:
        self.native.seek(_native(tp, offset))
        self._starts[tp] = offset

    # ------------------------------------------------------------------ offsets

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        """Commit these next offsets synchronously; a refusal because the partitions moved raises
        ``CommitFailedError``, a coordinator out of reach ``KafkaConnectionError`` (transient: the
        runner waits it out)."""
        native = [_native(tp, offset) for tp, offset in offsets.items()]
        try:
            done = await self._call(lambda: self.native.commit(offsets=native, asynchronous=False))
        except KafkaException as exc:
            raise _commit_error(exc.args[0] if exc.args else None, str(exc)) from exc
        for part in done or ():
            if part.error is not None:
                raise _commit_error(part.error, f"{part.topic}[{part.partition}]: {part.error}")

    async def committed(self, partition: TopicPartition) -> int | None:
        parts = await self._call(lambda: self.native.committed([_native(partition)], 10.0))
        offset: int = parts[0].offset
        return offset if offset >= 0 else None

    async def position(self, partition: TopicPartition) -> int:
        """The offset of the next record to apply, as aiokafka's: before any record of the
        partition is fetched, where it starts (its committed offset, or its first one without a
        commit). ``IllegalStateError`` when that cannot be learnt now."""
        position: int = await self._call(self._position, partition)
        return position

    def _position(self, tp: TopicPartition) -> int:
        consumer = self.native
        try:
            offset: int = consumer.position([_native(tp)])[0].offset
            if offset >= 0:
                return offset
            start = self._starts.get(tp)
            if start is None:
                start = consumer.committed([_native(tp)], _LOOKUP_TIMEOUT_S)[0].offset
                if start < 0:  # no commit yet: auto.offset.reset=earliest
                    start, _ = consumer.get_watermark_offsets(
                        _native(tp), _LOOKUP_TIMEOUT_S, cached=False
                    )
                self._starts[tp] = start
            return start
        except KafkaException as exc:
            raise IllegalStateError(f"no position for {tp}: {exc}") from exc


class _Command:
    """A call to run on the consumer thread, and its outcome."""

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...], *, quiet: bool = False):
        self.fn, self.args, self.quiet = fn, args, quiet
        self.future: concurrent.futures.Future[Any] = concurrent.futures.Future()

    def run(self) -> None:
        if not self.future.set_running_or_notify_cancel():
            return
        try:
            self.future.set_result(self.fn(*self.args))
        except BaseException as exc:
            if self.quiet:  # nobody awaits it (pause, resume, seek): said here
                log.warning("consumer call failed", extra={"error": repr(exc)[:300]})
                self.future.set_result(None)
            else:
                self.future.set_exception(exc)


def _commit_error(error: object, text: str) -> Exception:
    code = error.code() if isinstance(error, KafkaError) else None
    if code in _COMMIT_TRANSIENT or (isinstance(error, KafkaError) and error.retriable()):
        return KafkaConnectionError(f"offset commit: {text}")
    return CommitFailedError(f"offset commit: {text}")
