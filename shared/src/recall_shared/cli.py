"""The command line every service shares: serve, migrate, create-topics, redrive-dead-letters.

Services add their own commands (``recall-intake issue-api-key`` ...) with
:meth:`ServiceCli.command`.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, TypeVar

from fastapi import FastAPI

from recall_shared.kafka import create_topics
from recall_shared.logging import configure_logging
from recall_shared.migrations import make_revision, upgrade
from recall_shared.settings import ServiceSettings

# A service's own settings class: its `create_app` and its commands take that class, not the base.
S = TypeVar("S", bound=ServiceSettings)


GC_THRESHOLDS = (20_000, 20, 10)
"""The collector's thresholds while serving (Python's default: 700, 10, 10). A consumer holds a
batch of hundreds of decoded events, thousands of young containers, while it applies it; at the
default they were scanned again and again, promoted, and set off full collections: 9-16% of a
consumer's CPU while it took alerts in, 2-6% with these (bench/ingest_cpu.py, docs/benchmarks.md).
Cycles are rare in this code (refcounting frees the rest), so waiting longer costs little memory."""


def settle_heap() -> None:
    """Before serving: what exists now (modules, models, schemas, the app) lives as long as the
    process, so it is kept out of the collector's scans (which otherwise walk it on every full
    collection), and the collector runs at :data:`GC_THRESHOLDS`."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


class ServiceCli(Generic[S]):
    def __init__(
        self,
        *,
        settings_factory: Callable[[], S],
        create_app: Callable[[S], FastAPI],
        migrations_dir: Path,
    ) -> None:
        self.settings_factory = settings_factory
        self.create_app = create_app
        self.migrations_dir = migrations_dir
        self.parser = argparse.ArgumentParser()
        self.sub = self.parser.add_subparsers(dest="command", required=True)
        self.handlers: dict[str, Callable[[S, argparse.Namespace], Any]] = {}

        serve = self.command("serve", "Run the HTTP API, consumers and outbox relay")(self._serve)
        serve.add_argument("--migrate", action="store_true", help="Apply migrations before serving")
        self.command("migrate", "Apply database migrations")(
            lambda s, a: upgrade(self.migrations_dir, s.database_url)
        )
        revision = self.command(
            "make-migration", "Autogenerate a migration from the models (developers)"
        )(lambda s, a: make_revision(self.migrations_dir, s.database_url, a.message))
        revision.add_argument("-m", "--message", required=True)
        self.command("create-topics", "Create every catalog topic that is missing")(
            self._create_topics
        )
        redrive = self.command(
            "redrive-dead-letters", "Put this service's dead letters back through its handlers"
        )(self._redrive)
        redrive.add_argument("--limit", type=int, default=None)
        self.command(
            "purge-inbox",
            "Forget applied event ids older than *_INBOX_RETENTION_DAYS (also runs hourly)",
        )(self._purge_inbox)

    def command(
        self, name: str, help: str
    ) -> Callable[[Callable[..., Any]], argparse.ArgumentParser]:
        parser = self.sub.add_parser(name, help=help)

        def register(fn: Callable[..., Any]) -> argparse.ArgumentParser:
            self.handlers[name] = fn
            return parser

        return register

    def run(self, argv: list[str] | None = None) -> int:
        args = self.parser.parse_args(argv)
        settings = self.settings_factory()
        configure_logging(
            settings.service_name, settings.log_level, settings.log_json, settings.log_levels
        )
        result = self.handlers[args.command](settings, args)
        if asyncio.iscoroutine(result):
            result = asyncio.run(result)
        return int(result or 0)

    def _serve(self, settings: S, args: argparse.Namespace) -> None:
        import uvicorn

        if args.migrate:
            upgrade(self.migrations_dir, settings.database_url)
        app = self.create_app(settings)
        settle_heap()
        uvicorn.run(
            app, host=settings.http_host, port=settings.http_port, log_config=None, access_log=False
        )

    async def _create_topics(self, settings: S, args: argparse.Namespace) -> None:
        created = await create_topics(
            settings.kafka_bootstrap_servers,
            settings.topic_prefix,
            replication_factor=settings.topic_replication_factor,
            min_insync_replicas=settings.topic_min_insync_replicas,
        )
        print(
            f"created {len(created)} topics"
            + (f": {', '.join(created)}" if created else " (all present)")
        )

    async def _purge_inbox(self, settings: S, args: argparse.Namespace) -> None:
        runtime = self.create_app(settings).state.runtime
        try:
            purged = await runtime.purge_inbox()
        finally:
            await runtime.engine.dispose()
        print(f"purged {purged:,} inbox entries older than {settings.inbox_retention_days:g} days")

    async def _redrive(self, settings: S, args: argparse.Namespace) -> None:
        runtime = self.create_app(settings).state.runtime
        totals = await runtime.redrive_dead_letters(limit=args.limit)
        print(
            "redriven: " + (", ".join(f"{k}={v}" for k, v in sorted(totals.items())) or "nothing")
        )
