"""The two ways to issue a key agree: the CLI (``issue-api-key --seller-id``) refuses an
unregistered seller just as ``POST /v1/operator/api-keys`` does; ``register-seller`` is the CLI's
twin of ``POST /v1/operator/sellers``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import pytest

from recall_intake.cli import main

pytestmark = pytest.mark.integration


@pytest.fixture
def cli_env(intake, monkeypatch) -> Iterator[None]:
    """The CLI reads its settings from the environment: the test's database and topics."""
    monkeypatch.setenv("RECALL_INTAKE_DATABASE_URL", intake.settings.database_url)
    monkeypatch.setenv("RECALL_ALERTS_TOPIC_PREFIX", intake.settings.topic_prefix)
    monkeypatch.setenv("RECALL_ALERTS_API_KEY_PEPPER", intake.settings.api_key_pepper)
    monkeypatch.setenv("RECALL_ALERTS_ENV", intake.settings.environment)
    monkeypatch.setenv("RECALL_INTAKE_LOG_JSON", "false")
    root = logging.getLogger()  # the command configures logging; put the session's back after
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


async def _cli(*argv: str) -> int:
    return await asyncio.to_thread(main, list(argv))


async def test_unknown_seller_is_refused_by_both_paths(intake, unique, cli_env, capsys) -> None:
    seller = unique("seller")
    operator = await intake.operator_key()
    resp = await intake.client.post(
        "/v1/operator/api-keys",
        json={"role": "seller", "seller_id": seller},
        headers={"X-Api-Key": operator},
    )
    assert resp.status_code == 409
    assert resp.json()["error"] == "unknown_seller"
    assert resp.json()["message"].startswith(f"seller_id: unknown seller {seller!r}")

    assert await _cli("issue-api-key", "--seller-id", seller) == 1
    out, err = capsys.readouterr()
    assert out == ""  # no key printed
    assert f"unknown seller {seller!r}" in err
    assert f"register-seller {seller}" in err
    assert await intake.scalar("SELECT count(*) FROM sellers WHERE seller_id = :s", s=seller) == 0
    assert await intake.scalar("SELECT count(*) FROM api_keys WHERE seller_id = :s", s=seller) == 0


async def test_register_then_issue(intake, unique, cli_env, capsys) -> None:
    seller = unique("seller")
    assert await _cli("register-seller", seller, "--name", "Acme") == 0
    assert await intake.scalar("SELECT name FROM sellers WHERE seller_id = :s", s=seller) == "Acme"
    # Again: refused like the API's 409, unless the script says an existing seller is fine.
    assert await _cli("register-seller", seller) == 1
    assert f"seller {seller!r} exists" in capsys.readouterr().err
    assert await _cli("register-seller", seller, "--exist-ok") == 0

    assert await _cli("issue-api-key", "--seller-id", seller, "--label", "cli") == 0
    key = capsys.readouterr().out.strip().splitlines()[-1]
    resp = await intake.client.get("/v1/recalls", headers={"X-Api-Key": key})
    assert resp.status_code == 200
