"""``recall-intake import-recalls --format FORMAT FILE``: a whole regulator file, with a progress
bar on stderr and a summary on stdout. Exit code 0 even when some records failed; 1 when the file
cannot be read."""

from __future__ import annotations

import argparse
import sys
from collections import Counter

from recall_intake.importers.base import RecordError
from recall_intake.importers.parsers import FORMATS, parse_record
from recall_intake.importers.reader import BadLine, UnreadableFile, open_records
from recall_intake.importers.service import import_record
from recall_shared.db import create_engine, create_session_factory
from recall_shared.progress import ProgressBar
from recall_shared.settings import ServiceSettings

__all__ = ["FORMATS", "import_file"]


async def import_file(settings: ServiceSettings, args: argparse.Namespace) -> int:
    try:
        total, records = open_records(args.file)
    except UnreadableFile as exc:
        print(f"error: cannot read {exc}", file=sys.stderr)
        return 1
    progress = ProgressBar(total, label="import")
    for status in ("created", "linked", "skipped", "failed"):
        progress.counts[status] = 0
    failures: Counter[str] = Counter()
    with_rules = 0
    engine = create_engine(settings)
    try:
        factory = create_session_factory(engine)
        for raw in records:
            try:
                if isinstance(raw, BadLine):
                    raise RecordError(raw.error)
                imported = parse_record(args.format, raw)
            except RecordError as exc:
                failures[_group(str(exc))] += 1
                progress.advance(failed=1)
                continue
            async with factory() as session:
                try:
                    outcome = await import_record(session, imported)
                except Exception as exc:
                    await session.rollback()
                    failures[f"database error: {type(exc).__name__}"] += 1
                    progress.advance(failed=1)
                    continue
            with_rules += outcome.status == "created" and bool(imported.rules)
            progress.advance(**{outcome.status: 1})
    finally:
        await engine.dispose()
    progress.close()
    c = progress.counts
    print(
        f"{args.file}: {progress.done} records: created {c['created']} ({with_rules} with rules, "
        f"{c['created'] - with_rules} without), linked {c['linked']}, skipped {c['skipped']}, "
        f"failed {c['failed']}"
    )
    for reason, n in failures.most_common():
        print(f"  failed {n}: {reason}")
    return 0


def _group(reason: str) -> str:
    """Failure reasons grouped: details after a colon or in parentheses vary per record."""
    head = reason.split(" (", 1)[0]
    return head if len(head) <= 160 else head[:157] + "..."
