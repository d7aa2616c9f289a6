"""``purchase-matcher`` command line."""

from __future__ import annotations

from pathlib import Path

from purchase_matcher.app import create_app
from purchase_matcher.settings import Settings
from recall_shared.cli import ServiceCli

MIGRATIONS = Path(__file__).parent / "migrations"


def main(argv: list[str] | None = None) -> int:
    cli = ServiceCli(settings_factory=Settings, create_app=create_app, migrations_dir=MIGRATIONS)
    return cli.run(argv)


if __name__ == "__main__":
    raise SystemExit(main())
