"""A service's runtime: the database engine, Kafka producer, outbox relay and consumers it owns.

Built by each service's composition root (``create_app(settings)``), started and stopped by the
app's lifespan. Nothing here is a module-level global.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from recall_shared import inbox, task_dump
from recall_shared.cancellation import is_failure, suppressed_failures
from recall_shared.consumer import ConsumerRunner
from recall_shared.db import create_engine, create_session_factory, ping
from recall_shared.dead_letters import PendingLetters
from recall_shared.handlers import HandlerMap
from recall_shared.kafka import create_consumer, create_producer
from recall_shared.metrics import Metrics
from recall_shared.outbox import Outbox, OutboxRelay
from recall_shared.settings import ServiceSettings
from recall_shared.telemetry import Telemetry
from recall_shared.topics import TopicSpec
from recall_shared.waits import wait_set

log = logging.getLogger(__name__)

BackgroundTask = Callable[["ServiceRuntime"], Coroutine[Any, Any, None]]


# One inbox purge at a time per service database (its instances share it).
_PURGE_KEY = "hashtextextended('recall_alerts.inbox_purge', 0)"
_TRY_PURGE_LOCK = text(f"SELECT pg_try_advisory_lock({_PURGE_KEY})")
_PURGE_UNLOCK = text(f"SELECT pg_advisory_unlock({_PURGE_KEY})")


@dataclass
class ConsumerSpec:
    topics: Sequence[TopicSpec]
    handlers: HandlerMap
    group_suffix: str = ""


class ServiceRuntime:
    def __init__(self, settings: ServiceSettings, *, run_relay: bool = True) -> None:
        self.settings = settings
        self.metrics = Metrics(settings.service_name)
        self.telemetry = Telemetry(settings)
        self.outbox = Outbox(
            source=f"/recall-alerts/{settings.service_name}",
            service=settings.service_name,
            topic_prefix=settings.topic_prefix,
        )
        self.engine: AsyncEngine = create_engine(settings)
        self.telemetry.instrument_engine(self.engine)
        self.session_factory: async_sessionmaker[AsyncSession] = create_session_factory(self.engine)
        self.run_relay = run_relay
        self.producer: AIOKafkaProducer | None = None
        self.relay: OutboxRelay | None = None
        self.consumers: list[ConsumerRunner] = []
        self._consumer_specs: list[ConsumerSpec] = []
        self._background: list[tuple[str, BackgroundTask]] = []
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._stoppers: list[Callable[[], None]] = []
        self._stopping = asyncio.Event()
        # group -> original topic -> dead letters not yet redriven (kept by the dead-letter watch)
        self.pending_dead_letters: dict[str, dict[str, int]] = {}
        self._pending_topics: dict[str, set[str]] = {}

    def add_consumer(
        self,
        topics: Sequence[TopicSpec],
        handlers: HandlerMap,
        group_suffix: str = "",
    ) -> None:
        self._consumer_specs.append(ConsumerSpec(topics, handlers, group_suffix))

    def add_background(
        self, name: str, task: BackgroundTask, stop: Callable[[], None] | None = None
    ) -> None:
        """A long-running task of the service (a sender loop, a scheduler); cancelled at
        shutdown."""
        self._background.append((name, task))
        if stop is not None:
            self._stoppers.append(stop)

    async def start(self) -> None:
        """Start the runtime. When Kafka cannot be reached, the service still starts (HTTP, and
        writes into the outbox), reports ``kafka`` not ready, and connects in the background; the
        relay and the consumers start once it is connected."""
        self._stopping.clear()
        task_dump.install()
        try:
            self.producer = await self._started_producer()
        except Exception as exc:
            log.warning(
                "Kafka unreachable at start; serving without it and retrying",
                extra={"error": repr(exc)},
            )
            self._spawn("kafka-connect", self._connect_kafka_later())
        else:
            self._start_kafka_tasks()
        if self._consumer_specs:
            self._spawn("inbox-retention", self._purge_inbox_periodically())
        for name, task in self._background:
            self._spawn(name, task(self))
        log.info("service started", extra={"tasks": sorted(self._tasks)})

    async def _started_producer(self) -> AIOKafkaProducer:
        producer = create_producer(self.settings)
        try:
            await producer.start()
        except BaseException:
            with contextlib.suppress(Exception):
                await producer.stop()
            raise
        return producer

    async def _connect_kafka_later(self) -> None:
        delay = 1.0
        while not self._stopping.is_set():
            await wait_set(self._stopping, delay)
            if self._stopping.is_set():
                return
            try:
                producer = await self._started_producer()
            except Exception as exc:
                delay = min(delay * 2, 10.0)
                log.warning(
                    "Kafka still unreachable; retrying",
                    extra={"retry_in_s": delay, "error": repr(exc)},
                )
                continue
            if self._stopping.is_set():  # stopped while connecting: start nothing
                await producer.stop()
                return
            self.producer = producer
            self._start_kafka_tasks()
            log.info("connected to Kafka; relay and consumers started")
            return

    def _start_kafka_tasks(self) -> None:
        assert self.producer is not None
        if self.run_relay:
            self.relay = OutboxRelay(
                database_url=self.settings.database_url,
                producer=self.producer,
                service=self.settings.service_name,
                metrics=self.metrics,
                batch_size=self.settings.outbox_batch_size,
                fallback_poll_s=self.settings.outbox_fallback_poll_s,
                telemetry=self.telemetry,
            )
            self._spawn("outbox-relay", self.relay.run())
        self.consumers = self._build_runners(self.producer)
        for i, runner in enumerate(self.consumers):
            self._spawn(f"consumer-{i}", runner.run())
        if self.consumers:
            self._spawn("dead-letter-watch", self._watch_dead_letters())

    def _spawn(self, name: str, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work, name=name)
        task.add_done_callback(self._log_if_ended_early)
        self._tasks[name] = task

    def _log_if_ended_early(self, task: asyncio.Task[None]) -> None:
        """A background task that ends while the service runs is a bug (readiness then says
        ``stopped: <name>``): say how it ended, with the stack that ended it."""
        if self._stopping.is_set() or (task.get_name() == "kafka-connect" and self.producer):
            return
        failure = None if task.cancelled() else task.exception()
        log.error(
            "a background task ended while the service runs",
            extra={"task": task.get_name(), "how": "cancelled" if task.cancelled() else "ended"},
            exc_info=failure,
        )

    def _build_runners(self, producer: AIOKafkaProducer) -> list[ConsumerRunner]:
        return [
            ConsumerRunner(
                settings=self.settings,
                topics=spec.topics,
                handlers=spec.handlers,
                session_factory=self.session_factory,
                producer=producer,
                metrics=self.metrics,
                group_suffix=spec.group_suffix,
                telemetry=self.telemetry,
            )
            for spec in self._consumer_specs
        ]

    async def redrive_dead_letters(self, limit: int | None = None) -> dict[str, int]:
        """Redrive every runner's own dead letters (the ``redrive-dead-letters`` command), with
        runners that are built but not consuming; returns the summed outcomes."""
        producer = await self._started_producer()
        totals: dict[str, int] = {}
        try:
            for runner in self._build_runners(producer):
                for outcome, n in (await runner.redrive_dead_letters(limit=limit)).items():
                    totals[outcome] = totals.get(outcome, 0) + n
        finally:
            await producer.stop()
            await self.engine.dispose()
        return totals

    async def _watch_dead_letters(self) -> None:
        """Keep ``dead_letters_pending`` and the readiness details current, per runner and topic."""
        admin = AIOKafkaAdminClient(
            bootstrap_servers=self.settings.kafka_bootstrap_servers,
            client_id=f"{self.settings.service_name}-dead-letter-watch",
        )
        reader = create_consumer(self.settings, None, [])
        watches: list[tuple[ConsumerRunner, PendingLetters]] = []
        for runner in self.consumers:

            async def offsets(group: str = runner.redrive_group) -> dict[int, int]:
                got = await admin.list_consumer_group_offsets(group)
                return {tp.partition: meta.offset for tp, meta in got.items() if meta.offset >= 0}

            watches.append(
                (runner, PendingLetters(runner.dead_letter_topic, runner.group, offsets))
            )
        started = False
        try:
            while not self._stopping.is_set():
                try:
                    if not started:
                        await admin.start()
                        await reader.start()
                        started = True
                    for runner, watch in watches:
                        counts = await watch.scan(reader)
                        self.pending_dead_letters[runner.group] = counts
                        # Every topic the runner reads has a series, 0 when nothing waits.
                        known = self._pending_topics.get(runner.group, set()) | set(runner.topics)
                        for topic in set(counts) | known:
                            self.metrics.dead_letters_pending.labels(runner.group, topic).set(
                                counts.get(topic, 0)
                            )
                        self._pending_topics[runner.group] = set(counts)
                except BaseException as exc:
                    if not is_failure(exc):
                        raise
                    log.warning(
                        "counting dead letters failed; retrying", extra={"error": repr(exc)}
                    )
                await wait_set(self._stopping, self.settings.dead_letter_scan_interval_s)
        finally:
            with suppressed_failures():
                await reader.stop()
            with suppressed_failures():
                await admin.close()

    async def purge_inbox(self) -> int:
        """Forget applied event ids older than ``inbox_retention_days``; returns how many. Once
        across the service's instances: while one purges (it holds the advisory lock), the others'
        rounds skip (0)."""
        before = datetime.now(UTC) - timedelta(days=self.settings.inbox_retention_days)
        async with self.engine.connect() as lock:
            if not await lock.scalar(_TRY_PURGE_LOCK):
                return 0
            try:
                purged = await inbox.purge(self.engine, before)
            finally:
                await lock.execute(_PURGE_UNLOCK)
        if purged:
            log.info("purged inbox", extra={"purged": purged, "before": before.isoformat()})
        return purged

    async def _purge_inbox_periodically(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.purge_inbox()
            except Exception:
                log.exception("inbox purge failed; retrying next round")
            await wait_set(self._stopping, self.settings.inbox_purge_interval_s)

    async def stop(self) -> None:
        self._stopping.set()
        for runner in self.consumers:
            runner.stop()
        if self.relay is not None:
            self.relay.stop()
        for stop in self._stoppers:
            stop()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks.values(), timeout=10)
            for task in pending:
                task.cancel()
            with contextlib.suppress(Exception):
                await asyncio.gather(*pending, return_exceptions=True)
        self._tasks.clear()
        self.consumers.clear()
        if self.producer is not None:
            await self.producer.stop()
            self.producer = None
        await self.engine.dispose()
        self.telemetry.flush()  # the spans still buffered
        log.info("service stopped")

    @asynccontextmanager
    async def lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        await self.start()
        try:
            yield
        finally:
            await self.stop()

    async def readiness(self) -> dict[str, str]:
        """What /readyz reports: each dependency 'ok' or why not."""
        checks: dict[str, str] = {}
        try:
            await asyncio.wait_for(ping(self.engine), timeout=2)
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"unreachable: {type(exc).__name__}: {exc}"[:300]
        try:
            if self.producer is None:
                raise RuntimeError("not connected yet (retrying in the background)")
            await asyncio.wait_for(self.producer.client.fetch_all_metadata(), timeout=2)
            checks["kafka"] = "ok"
        except Exception as exc:
            checks["kafka"] = f"unreachable: {type(exc).__name__}: {exc}"[:300]
        dead = [
            name
            for name, t in self._tasks.items()
            if t.done() and not (name == "kafka-connect" and self.producer)
        ]
        checks["background_tasks"] = "ok" if not dead else f"stopped: {', '.join(dead)}"
        if self.consumers:
            waiting = [h for h in (r.health() for r in self.consumers) if h != "ok"]
            checks["consumers"] = "ok" if not waiting else "; ".join(waiting)[:500]
        return checks

    def details(self) -> dict[str, object]:
        """What /readyz adds without affecting readiness: dead letters waiting for a redrive."""
        pending = {
            group: counts
            for group, counts in self.pending_dead_letters.items()
            if any(counts.values())
        }
        if not pending:
            return {"dead_letters": "none pending"}
        package = self.settings.service_name.replace("-", "_")
        return {
            "dead_letters": pending,
            "redrive": f"python -m {package} redrive-dead-letters",
        }
