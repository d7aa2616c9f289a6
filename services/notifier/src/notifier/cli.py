"""``notifier`` command line."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from notifier.app import create_app
from notifier.clock import SystemClock
from notifier.letter_batch import LetterBatcher
from notifier.letter_returns import ReturnFileError, import_returns, parse_return_file
from notifier.settings import Settings
from recall_shared.cli import ServiceCli
from recall_shared.db import create_engine, create_session_factory
from recall_shared.outbox import Outbox

MIGRATIONS = Path(__file__).parent / "migrations"


async def letter_batch(settings: Settings, args: argparse.Namespace) -> int:
    """Write today's letter batch now (the service does it daily at letter_batch_hour): one PDF
    per customer and the manifest, with a progress bar; the running service's relay publishes the
    notification.letter_sent.v1 events."""
    from rich.progress import Progress

    if not settings.letter_dir:
        print("NOTIFIER_LETTER_DIR is not set: letters are not a channel here")
        return 2
    engine = create_engine(settings)
    try:
        batcher = LetterBatcher(
            settings=settings,
            session_factory=create_session_factory(engine),
            outbox=_outbox(settings),
        )
        with Progress(transient=not args.keep_progress) as bar:
            task = bar.add_task("letters", total=None)
            result = await batcher.run_batch(
                limit=args.limit,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
    finally:
        await engine.dispose()
    where = f" in {result.folder}" if result.folder else ""
    print(
        f"{result.batch_id}: {result.letters} letter(s), {result.notices} notice(s){where}; "
        f"{result.held} not sent (withdrawn, refused or no address)"
    )
    return 0


async def letter_returns(settings: Settings, args: argparse.Namespace) -> int:
    """Import a mail house's return file (letters returned undeliverable, by manifest letter id):
    each recorded as a bounce of its notices, the address marked undeliverable; with a progress
    bar. Importing it again changes nothing."""
    from rich.progress import Progress

    try:
        returned = parse_return_file(await asyncio.to_thread(Path(args.file).read_bytes))
    except OSError as exc:
        print(f"cannot read {args.file}: {exc.strerror or exc}")
        return 2
    except ReturnFileError as exc:
        print(f"{args.file}: {exc}")
        return 2
    engine = create_engine(settings)
    try:
        with Progress(transient=not args.keep_progress) as bar:
            task = bar.add_task("returned letters", total=len(returned))
            result = await import_returns(
                create_session_factory(engine),
                _outbox(settings),
                returned,
                now=SystemClock().now(),
                progress=lambda done: bar.update(task, completed=done),
            )
    finally:
        await engine.dispose()
    print(
        f"{result.returned} letter(s) returned ({result.notices} notice(s)), "
        f"{result.already} already recorded, {len(result.unknown)} unknown"
    )
    for letter_id in result.unknown[:20]:
        print(f"  unknown letter id: {letter_id}")
    return 0


def _outbox(settings: Settings) -> Outbox:
    return Outbox(
        source=f"/recall-alerts/{settings.service_name}",
        service=settings.service_name,
        topic_prefix=settings.topic_prefix,
    )


def main(argv: list[str] | None = None) -> int:
    cli = ServiceCli(settings_factory=Settings, create_app=create_app, migrations_dir=MIGRATIONS)
    batch = cli.command(
        "letter-batch", "Write the queued letters now: a PDF per customer and a manifest"
    )(letter_batch)
    batch.add_argument("--limit", type=int, default=100_000, help="At most this many notices")
    batch.add_argument("--keep-progress", action="store_true", help="Leave the bar on screen")
    returns = cli.command(
        "letter-returns", "Import a mail house's return file: letters returned undeliverable"
    )(letter_returns)
    returns.add_argument("file", help="CSV: letter_id (the manifest's), returned_on, reason")
    returns.add_argument("--keep-progress", action="store_true", help="Leave the bar on screen")
    return cli.run(argv)


if __name__ == "__main__":
    raise SystemExit(main())
