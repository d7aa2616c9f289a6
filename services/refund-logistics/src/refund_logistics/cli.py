"""``refund-logistics`` command line."""

from __future__ import annotations

from pathlib import Path

from recall_shared.cli import ServiceCli
from refund_logistics.app import create_app
from refund_logistics.settings import Settings

MIGRATIONS = Path(__file__).parent / "migrations"


def main(argv: list[str] | None = None) -> int:
    return ServiceCli(
        settings_factory=Settings, create_app=create_app, migrations_dir=MIGRATIONS
    ).run(argv)


if __name__ == "__main__":
    raise SystemExit(main())
