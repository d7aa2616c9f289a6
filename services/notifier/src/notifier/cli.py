"""``notifier`` command line."""

from __future__ import annotations

from pathlib import Path

from notifier.app import create_app
from notifier.settings import Settings
from recall_shared.cli import ServiceCli

MIGRATIONS = Path(__file__).parent / "migrations"


def main(argv: list[str] | None = None) -> int:
    return ServiceCli(
        settings_factory=Settings, create_app=create_app, migrations_dir=MIGRATIONS
    ).run(argv)


if __name__ == "__main__":
    raise SystemExit(main())
