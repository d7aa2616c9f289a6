"""``recall-intake`` command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from recall_intake.app import create_app
from recall_intake.auth import UnknownSeller, issue_key
from recall_intake.importers.command import FORMATS, import_file
from recall_intake.models import Seller
from recall_intake.settings import Settings
from recall_shared.cli import ServiceCli
from recall_shared.db import create_engine, create_session_factory
from recall_shared.outbox import Outbox

MIGRATIONS = Path(__file__).parent / "migrations"


def _outbox(settings: Settings) -> Outbox:
    return Outbox(
        source=f"/recall-alerts/{settings.service_name}",
        service=settings.service_name,
        topic_prefix=settings.topic_prefix,
    )


async def _register_seller(settings: Settings, args: argparse.Namespace) -> int:
    """The CLI twin of POST /v1/operator/sellers: an existing seller is refused (exit 1) unless
    --exist-ok (scripts that run twice, such as the demo)."""
    engine = create_engine(settings)
    try:
        async with create_session_factory(engine)() as session:
            if await session.get(Seller, args.seller_id) is not None:
                if args.exist_ok:
                    return 0
                print(f"error: seller {args.seller_id!r} exists", file=sys.stderr)
                return 1
            session.add(Seller(seller_id=args.seller_id, name=args.name or args.seller_id))
            await session.commit()
    finally:
        await engine.dispose()
    return 0


async def _issue_key(settings: Settings, args: argparse.Namespace) -> int:
    engine = create_engine(settings)
    try:
        async with create_session_factory(engine)() as session:
            try:
                plaintext, _ = await issue_key(
                    session,
                    role="seller" if args.seller_id else "operator",
                    seller_id=args.seller_id,
                    label=args.label,
                    pepper=settings.api_key_pepper,
                    outbox=_outbox(settings),
                )
            except UnknownSeller as exc:
                # The same refusal as POST /v1/operator/api-keys (422).
                print(
                    f"error: {exc}; register it first: recall-intake register-seller "
                    f"{args.seller_id}",
                    file=sys.stderr,
                )
                return 1
            await session.commit()
    finally:
        await engine.dispose()
    # The plaintext is shown once, on stdout alone, so scripts can capture it.
    print(plaintext)
    return 0


def main(argv: list[str] | None = None) -> int:
    cli = ServiceCli(settings_factory=Settings, create_app=create_app, migrations_dir=MIGRATIONS)
    seller = cli.command("register-seller", "Register a seller (POST /v1/operator/sellers)")(
        _register_seller
    )
    seller.add_argument("seller_id")
    seller.add_argument("--name", default=None, help="Display name (default: the id)")
    seller.add_argument(
        "--exist-ok", action="store_true", help="An existing seller is not an error"
    )
    p = cli.command(
        "issue-api-key", "Issue an operator key, or a seller key with --seller-id (printed once)"
    )(_issue_key)
    p.add_argument(
        "--seller-id",
        default=None,
        help="Issue a seller key; the seller must be registered (register-seller)",
    )
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
