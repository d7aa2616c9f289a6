"""``customer-api`` command line."""

from __future__ import annotations

import argparse
from datetime import timedelta
from pathlib import Path

from customer_api.app import create_app
from customer_api.settings import Settings
from recall_shared.auth import issue_customer_token
from recall_shared.cli import ServiceCli

MIGRATIONS = Path(__file__).parent / "migrations"


def _demo_token(settings: Settings, args: argparse.Namespace) -> None:
    if settings.environment == "production":
        raise SystemExit(
            "demo tokens are for development and tests; production tokens come from the identity "
            "provider"
        )
    print(
        issue_customer_token(args.customer_id, settings.jwt_secret, ttl=timedelta(hours=args.hours))
    )


def main(argv: list[str] | None = None) -> int:
    cli = ServiceCli(settings_factory=Settings, create_app=create_app, migrations_dir=MIGRATIONS)
    p = cli.command(
        "demo-token", "Print a customer bearer token signed with the development secret"
    )(_demo_token)
    p.add_argument("customer_id")
    p.add_argument("--hours", type=int, default=12)
    return cli.run(argv)


if __name__ == "__main__":
    raise SystemExit(main())
