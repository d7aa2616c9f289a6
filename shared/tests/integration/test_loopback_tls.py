"""On loopback the services' connections, through SQLAlchemy and plain asyncpg alike, are made
without TLS (the server, Debian's, offers it): what the server itself reports for them."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy import text

from recall_shared.db import asyncpg_dsn, create_engine

pytestmark = pytest.mark.integration

_SSL_IN_USE = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"


async def test_loopback_connections_do_not_use_tls(infra) -> None:
    settings = infra.settings()
    assert "127.0.0.1" in settings.database_url
    engine = create_engine(settings)
    try:
        async with engine.connect() as conn:
            assert (await conn.execute(text(_SSL_IN_USE))).scalar() is False
    finally:
        await engine.dispose()
    plain = await asyncpg.connect(asyncpg_dsn(settings.database_url))
    try:
        assert await plain.fetchval(_SSL_IN_USE) is False
    finally:
        await plain.close()
