"""``recall-intake`` command line."""

from __future__ import annotations

import argparse
from pathlib import Path

from sqlalchemy import select

from recall_intake.app import create_app
from recall_intake.auth import issue_key
from recall_intake.importers.command import FORMATS, import_file
from recall_intake.models import Seller
from recall_intake.settings import Settings
from recall_shared.cli import ServiceCli
from recall_shared.db import create_engine, create_session_factory
from recall_shared.outbox import Outbox

MIGRATIONS = Path(__file__).parent / "migrations"


async def _issue_key(settings: Settings, args: argparse.Namespace) -> None:
    engine = create_engine(settings)
    try:
        async with create_session_factory(engine)() as session:
            if args.seller_id:
                if (
                    await session.scalar(select(Seller).where(Seller.seller_id == args.seller_id))
                    is None
                ):
                    session.add(
                        Seller(seller_id=args.seller_id, name=args.seller_name or args.seller_id)
                    )
                    await session.flush()  # the key's foreign key needs the seller row first
            plaintext, row = await issue_key(
                session,
                role="seller" if args.seller_id else "operator",
                seller_id=args.seller_id,
                label=args.label,
                pepper=settings.api_key_pepper,
                outbox=Outbox(
                    source=f"/recall-alerts/{settings.service_name}",
                    service=settings.service_name,
                    topic_prefix=settings.topic_prefix,
                ),
            )
            await session.commit()
    finally:
        await engine.dispose()
    # The plaintext is shown once, on stdout alone, so scripts can capture it.
    print(plaintext)


def main(argv: list[str] | None = None) -> int:
    cli = ServiceCli(settings_factory=Settings, create_app=create_app, migrations_dir=MIGRATIONS)
    p = cli.command(
        "issue-api-key", "Issue an operator key, or a seller key with --seller-id (printed once)"
    )(_issue_key)
    p.add_argument(
        "--seller-id", default=None, help="Issue a seller key (the seller is created if new)"
    )
    p.add_argument("--seller-name", default=None)
    p.add_argument("--label", default="")
    imp = cli.command(
        "import-recalls", "Import a regulator file (CPSC, openFDA, EU Safety Gate) as draft recalls"
    )(import_file)
    imp.add_argument(
        "--format", choices=FORMATS, default="auto", help="The records' shape; auto detects each"
    )
    imp.add_argument(
        "file", help='JSON array, {"success":{"results":[...]}}, {"seeds":[...]} or JSON lines'
    )
    return cli.run(argv)


if __name__ == "__main__":
    raise SystemExit(main())
