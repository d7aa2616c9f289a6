"""The cheap hot path's pieces that need no database or broker: the verified-token cache, the read
pool's one retry on a dropped connection, the documented security of the routes that check the token
themselves, cursors."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import jwt
import pytest

from customer_api import logic
from customer_api.app import create_app
from customer_api.reads import ReadPool
from customer_api.settings import Settings
from recall_shared.auth import CustomerTokenVerifier, InvalidToken, issue_customer_token

SECRET = "unit-secret-" + "s" * 40
OTHER = "other-secret-" + "o" * 40


# --------------------------------------------------------------------------- the verified-token
# cache


def test_a_cached_token_is_refused_once_it_expires() -> None:
    verifier = CustomerTokenVerifier(secret=SECRET, leeway_s=0)
    exp = int(time.time()) + 1
    token = jwt.encode({"sub": "cust-a", "exp": exp}, SECRET, algorithm="HS256")
    assert verifier.customer_id(token) == "cust-a"
    assert verifier.customer_id(token) == "cust-a"  # answered from the cache
    assert token in verifier._verified
    while time.time() <= exp + 0.05:
        time.sleep(0.05)
    with pytest.raises(InvalidToken, match=r"^token expired$"):
        verifier.customer_id(token)
    with pytest.raises(InvalidToken, match=r"^token expired$"):
        verifier.customer_id(token)
    assert token not in verifier._verified


@dataclass(frozen=True)
class _CountingVerifier(CustomerTokenVerifier):
    verified: list[str] = field(default_factory=list)

    def _verify(self, token: str) -> tuple[str, int]:
        self.verified.append(token)
        return super()._verify(token)


def test_the_cache_applies_the_same_leeway_as_the_signature_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    verifier = _CountingVerifier(secret=SECRET, leeway_s=30)
    token = issue_customer_token("cust-a", SECRET, ttl=timedelta(minutes=1))
    assert verifier.customer_id(token) == "cust-a"
    assert verifier.customer_id(token) == "cust-a"
    assert len(verifier.verified) == 1  # the second answer came from the cache
    exp = verifier._verified[token][1]
    monkeypatch.setattr(
        time, "time", lambda: exp + 29
    )  # within the leeway: still answered from the cache
    assert verifier.customer_id(token) == "cust-a"
    assert len(verifier.verified) == 1
    monkeypatch.setattr(
        time, "time", lambda: exp + 30
    )  # past it: no longer trusted, verified again
    verifier.customer_id(token)  # (PyJWT's own clock says valid: the token is really fresh)
    assert len(verifier.verified) == 2


def test_a_token_only_ever_yields_its_own_customer() -> None:
    verifier = CustomerTokenVerifier(secret=SECRET)
    token_a, token_b = (
        issue_customer_token("cust-a", SECRET),
        issue_customer_token("cust-b", SECRET),
    )
    assert verifier.customer_id(token_a) == "cust-a"
    assert verifier.customer_id(token_b) == "cust-b"
    assert verifier.customer_id(token_a) == "cust-a"
    assert verifier.customer_id(token_b) == "cust-b"


def test_forged_tokens_are_refused_even_when_a_good_one_of_the_customer_is_cached() -> None:
    verifier = CustomerTokenVerifier(secret=SECRET)
    good = issue_customer_token("cust-a", SECRET)
    assert verifier.customer_id(good) == "cust-a"
    forged = issue_customer_token("cust-a", OTHER)  # same claims, wrong key
    header, payload, signature = good.split(".")
    tampered = f"{header}.{payload}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"
    # B's claims, A's signature
    swapped = f"{header}.{issue_customer_token('cust-b', SECRET).split('.')[1]}.{signature}"
    for bad in (forged, tampered, swapped, good + " ", "Bearer " + good):
        for _ in range(2):
            with pytest.raises(InvalidToken):
                verifier.customer_id(bad)
        assert bad not in verifier._verified


def test_refused_tokens_are_never_cached() -> None:
    verifier = CustomerTokenVerifier(secret=SECRET)
    expired = issue_customer_token(
        "c", SECRET, ttl=timedelta(minutes=5), now=datetime.now(UTC) - timedelta(hours=1)
    )
    for _ in range(3):
        with pytest.raises(InvalidToken, match=r"^token expired$"):
            verifier.customer_id(expired)
    assert verifier._verified == {}


def test_the_cache_is_bounded_and_can_be_turned_off() -> None:
    verifier = CustomerTokenVerifier(secret=SECRET, cache_size=2)
    tokens = [issue_customer_token(f"cust-{i}", SECRET) for i in range(3)]
    for t in tokens:
        verifier.customer_id(t)
    assert list(verifier._verified) == tokens[1:]  # the oldest went first
    assert verifier.customer_id(tokens[0]) == "cust-0"  # verified again
    off = CustomerTokenVerifier(secret=SECRET, cache_size=0)
    assert off.customer_id(tokens[0]) == "cust-0"
    assert off._verified == {}


def test_verifiers_do_not_share_their_caches() -> None:
    token = issue_customer_token("cust-a", SECRET)
    assert CustomerTokenVerifier(secret=SECRET).customer_id(token) == "cust-a"
    with pytest.raises(InvalidToken):
        CustomerTokenVerifier(secret=OTHER).customer_id(
            token
        )  # a key change refuses what the old key accepted


# --------------------------------------------------------------------------- the read pool


class _FlakyConnection:
    def __init__(self, pool: _FlakyPool) -> None:
        self.pool = pool

    async def fetch(self, query: str, *args: object) -> list[str]:
        self.pool.calls += 1
        if self.pool.failures:
            raise self.pool.failures.pop(0)
        return ["row"]

    def terminate(self) -> None:
        self.pool.terminated += 1


class _FlakyPool:
    def __init__(self, failures: list[BaseException]) -> None:
        self.failures = failures
        self.calls = self.terminated = self.expired = 0

    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[_FlakyConnection]:
        yield _FlakyConnection(self)

    async def expire_connections(self) -> None:
        self.expired += 1


@pytest.mark.asyncio
async def test_a_read_replaces_dropped_connections_and_is_retried_once() -> None:
    reads = ReadPool("postgresql+asyncpg://u:p@127.0.0.1:1/db")
    flaky = reads._pool = _FlakyPool(
        [asyncpg.exceptions.AdminShutdownError("terminating connection")]
    )
    assert await reads.fetch("SELECT 1") == ["row"]
    assert (flaky.calls, flaky.terminated, flaky.expired) == (2, 1, 1)
    # Only once.
    flaky = reads._pool = _FlakyPool([ConnectionResetError(), ConnectionResetError()])
    with pytest.raises(ConnectionResetError):
        await reads.fetch("SELECT 1")
    assert (flaky.calls, flaky.terminated, flaky.expired) == (2, 2, 1)
    # A query error is not retried, and the connection (ready again) is kept.
    flaky = reads._pool = _FlakyPool([asyncpg.exceptions.UndefinedColumnError("no such column")])
    with pytest.raises(asyncpg.exceptions.UndefinedColumnError):
        await reads.fetch("SELECT 1")
    assert (flaky.calls, flaky.terminated, flaky.expired) == (1, 0, 0)
    # A connection the server's goodbye reached while it was idle in the pool: dropped, not reused.
    flaky = reads._pool = _FlakyPool(
        [asyncpg.exceptions.InternalClientError("another operation is in progress")]
    )
    assert await reads.fetch("SELECT 1") == ["row"]
    assert (flaky.calls, flaky.terminated, flaky.expired) == (2, 1, 1)


# --------------------------------------------------------------------------- OpenAPI and cursors


def test_every_customer_route_documents_the_bearer_scheme() -> None:
    doc = create_app(Settings()).openapi()
    assert doc["components"]["securitySchemes"]["HTTPBearer"] == {
        "type": "http",
        "scheme": "bearer",
    }
    me = {
        (path, method): op
        for path, ops in doc["paths"].items()
        if path.startswith("/v1/me")
        for method, op in ops.items()
    }
    assert ("/v1/me/banner", "get") in me and ("/v1/me/alerts", "get") in me
    for key, op in me.items():
        assert op.get("security") == [{"HTTPBearer": []}], key
    banner_params = {p["name"]: p["in"] for p in me["/v1/me/banner", "get"]["parameters"]}
    assert banner_params == {"if-none-match": "header"}


def test_cursors_round_trip_and_bad_ones_are_client_errors() -> None:
    created = datetime(2026, 11, 25, 23, 16, 0, 123456, tzinfo=UTC)
    assert logic.parse_cursor(logic.next_cursor_of(created, "a_1")) == (created, "a_1")
    for bad in ("garbage", "abc_def", "_x", "9" * 30 + "_x", "-" + "9" * 20 + "_x"):
        with pytest.raises(logic.BadCursor):
            logic.parse_cursor(bad)


# --------------------------------------------------------------------------- the banner's hot path


class _NoAlerts:
    async def fetch(self, query: str, *args: object) -> list[object]:
        self.customer = args[0]
        return []


async def _call_hot_path(
    method: str, path: str, headers: list[tuple[bytes, bytes]]
) -> tuple[list[str], list[MutableMapping[str, Any]], _NoAlerts]:
    from starlette.datastructures import State

    from customer_api.hot_path import BannerHotPath

    state = State()
    state.token_verifier = CustomerTokenVerifier(secret=SECRET)
    state.read_pool = _NoAlerts()
    state.banner_cache_control = "private, max-age=15"
    passed_on: list[str] = []

    async def route(scope, receive, send) -> None:
        passed_on.append(scope["path"])

    class _App:
        pass

    app = _App()
    app.state = state  # type: ignore[attr-defined]
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "root_path": "",
        "headers": headers,
        "app": app,
    }
    await BannerHotPath(route)(scope, receive, send)
    return passed_on, sent, state.read_pool


@pytest.mark.asyncio
async def test_the_hot_path_answers_only_a_get_of_the_banner_with_a_token_that_verifies() -> None:
    good = issue_customer_token("cust-a", SECRET).encode()
    passed_on, sent, pool = await _call_hot_path(
        "GET", "/v1/me/banner", [(b"authorization", b"Bearer " + good)]
    )
    assert passed_on == [] and sent[0]["status"] == 200 and pool.customer == "cust-a"
    assert sent[1]["body"] == b'{"open_alerts":0,"most_severe":null}'
    headers = dict(sent[0]["headers"])
    assert headers[b"etag"].startswith(b'"') and headers[b"vary"] == b"Authorization"
    _, sent, _ = await _call_hot_path(
        "GET",
        "/v1/me/banner",
        [(b"authorization", b"bearer " + good), (b"if-none-match", headers[b"etag"])],
    )
    assert sent[0]["status"] == 304
    # Everything else goes on to the FastAPI route, which answers as it always did.
    expired = issue_customer_token("cust-a", SECRET, ttl=timedelta(minutes=-10)).encode()
    forged = issue_customer_token("cust-a", OTHER).encode()
    for method, path, headers_ in [
        ("GET", "/v1/me/banner", []),
        ("GET", "/v1/me/banner", [(b"authorization", b"Bearer " + expired)]),
        ("GET", "/v1/me/banner", [(b"authorization", b"Bearer " + forged)]),
        ("GET", "/v1/me/banner", [(b"authorization", b"Basic " + good)]),
        ("GET", "/v1/me/banner", [(b"authorization", b"Bearer ")]),
        ("POST", "/v1/me/banner", [(b"authorization", b"Bearer " + good)]),
        ("GET", "/v1/me/banner/", [(b"authorization", b"Bearer " + good)]),
        ("GET", "/v1/me/alerts", [(b"authorization", b"Bearer " + good)]),
    ]:
        passed_on, sent, _ = await _call_hot_path(method, path, headers_)
        assert passed_on == [path] and sent == [], (method, path, headers_)
