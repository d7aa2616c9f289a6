"""``notifier`` command line."""

from __future__ import annotations

import argparse
from pathlib import Path

from notifier.app import create_app
from notifier.letter_batch import LetterBatcher
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
            outbox=Outbox(
                source=f"/recall-alerts/{settings.service_name}",
                service=settings.service_name,
                topic_prefix=settings.topic_prefix,
            ),
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


def main(argv: list[str] | None = None) -> int:
    cli = ServiceCli(settings_factory=Settings, create_app=create_app, migrations_dir=MIGRATIONS)
    batch = cli.command(
        "letter-batch", "Write the queued letters now: a PDF per customer and a manifest"
    )(letter_batch)
    batch.add_argument("--limit", type=int, default=100_000, help="At most this many notices")
    batch.add_argument("--keep-progress", action="store_true", help="Leave the bar on screen")
    return cli.run(argv)


if __name__ == "__main__":
    raise SystemExit(main())
