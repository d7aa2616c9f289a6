"""The shared HTTP layer (recall_shared.http): input refused before any route, bodies bounded while
they stream, write rate limits per credential, and unexpected errors answered without breaking the
connection.

A small app with the same ``install_common`` as every service; nothing here needs PostgreSQL or
Kafka.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request
from pydantic import BaseModel

from recall_shared.http import install_common
from recall_shared.http_settings import DEFAULT_WRITE_RATE_LIMIT, HttpServiceSettings
from recall_shared.service import ServiceRuntime


class Settings(HttpServiceSettings):
    service_name: str = "guard-test"
    database_url: str = "postgresql+asyncpg://nobody:nobody@127.0.0.1:1/none"
    environment: str = "test"  # type: ignore[assignment]
    jwt_secret: str = "j" * 40
    api_key_pepper: str = "p" * 40


class Thing(BaseModel):
    title: str
    units: int | None = None


def make_app(**settings: Any) -> FastAPI:
    app = FastAPI()
    install_common(
        app,
        ServiceRuntime(Settings(**settings)),
        body_limits={r"/upload": 4096, r"/form": 100},
    )

    @app.post("/things")
    async def create(thing: Thing) -> dict[str, Any]:
        return thing.model_dump()

    @app.get("/things/{thing_id}")
    async def read(thing_id: str, q: str = "") -> dict[str, str]:
        return {"thing_id": thing_id, "q": q}

    @app.post("/upload")
    async def upload(request: Request) -> dict[str, int]:
        return {"size": len(await request.body())}

    @app.post("/form")
    async def form(request: Request) -> dict[str, int]:
        return {"size": len(await request.body())}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("a bug")

    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=make_app()), base_url="http://t"
    ) as c:
        yield c


def assert_error(r: httpx.Response, status: int, error: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error", "message", "detail"} and body["error"] == error, body
    return body


# ------------------------------------------------------------------ what storage cannot hold


async def test_nul_in_a_json_field_is_a_422_naming_it(client: httpx.AsyncClient) -> None:
    body = assert_error(
        await client.post("/things", json={"title": "a\x00b"}), 422, "validation_failed"
    )
    assert body["message"].startswith("title: must not contain the NUL character")
    assert body["detail"][0]["loc"] == ["body", "title"]


async def test_a_lone_surrogate_in_json_is_a_422(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/things", content=b'{"title": "\\ud800"}', headers={"content-type": "application/json"}
    )
    assert "lone surrogate" in assert_error(r, 422, "validation_failed")["message"]


async def test_an_integer_beyond_64_bits_is_a_422(client: httpx.AsyncClient) -> None:
    r = await client.post("/things", json={"title": "ok", "units": 10**30})
    assert assert_error(r, 422, "validation_failed")["message"].startswith("units: integer out of")


async def test_nan_and_infinity_are_refused(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/things",
        content=b'{"title": "ok", "units": NaN}',
        headers={"content-type": "application/json"},
    )
    assert "finite" in assert_error(r, 422, "validation_failed")["message"]


async def test_nul_in_the_path_or_a_query_parameter_is_a_422(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/things/a%00b"), 422, "validation_failed")
    body = assert_error(await client.get("/things/a?q=x%00"), 422, "validation_failed")
    assert body["detail"][0]["loc"] == ["query", "q"]


async def test_nul_in_a_form_field_is_a_422(client: httpx.AsyncClient) -> None:
    r = await client.post("/form", content=b"reason=a%00b", headers={"content-type": FORM})
    assert_error(r, 422, "validation_failed")


async def test_good_input_passes_unchanged(client: httpx.AsyncClient) -> None:
    r = await client.post("/things", json={"title": "Kettle «KX-1» 🫖", "units": 2**63 - 1})
    assert r.status_code == 200 and r.json() == {"title": "Kettle «KX-1» 🫖", "units": 2**63 - 1}
    r = await client.post("/things", content=b"{not json", headers={"content-type": JSON})
    assert_error(r, 422, "validation_failed")  # FastAPI's own answer to a broken body


# ------------------------------------------------------------------ body size

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"


async def test_a_json_body_over_the_limit_is_a_413(client: httpx.AsyncClient) -> None:
    big = b'{"title": "' + b"x" * (1024 * 1024) + b'"}'
    r = await client.post("/things", content=big, headers={"content-type": JSON})
    assert_error(r, 413, "payload_too_large")


async def test_a_chunked_body_is_counted_as_it_streams(client: httpx.AsyncClient) -> None:
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(100):
            sent += 1
            yield b"x" * 1024

    r = await client.post("/upload", content=chunks(), headers={"content-type": "image/png"})
    assert_error(r, 413, "payload_too_large")
    assert "content-length" not in r.request.headers  # chunked: no declared size to check


async def test_a_route_with_its_own_limit(client: httpx.AsyncClient) -> None:
    r = await client.post("/upload", content=b"x" * 4096, headers={"content-type": "image/png"})
    assert r.status_code == 200 and r.json() == {"size": 4096}
    r = await client.post("/upload", content=b"x" * 4097, headers={"content-type": "image/png"})
    assert_error(r, 413, "payload_too_large")
    r = await client.post("/form", content=b"a=" + b"x" * 200, headers={"content-type": FORM})
    assert_error(r, 413, "payload_too_large")


def test_the_body_limit_is_a_setting() -> None:
    assert Settings().http_max_body_bytes == 1024 * 1024
    assert Settings(http_max_body_bytes=2048).http_max_body_bytes == 2048


async def test_the_configured_limit_applies() -> None:
    app = make_app(http_max_body_bytes=2048)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        r = await c.post("/things", json={"title": "x" * 3000})
    assert_error(r, 413, "payload_too_large")


# ------------------------------------------------------------------ rate limits


def test_rate_limits_are_off_in_tests_unless_set() -> None:
    assert Settings().write_rate_limit == ""
    assert Settings(environment="development").write_rate_limit == DEFAULT_WRITE_RATE_LIMIT
    assert Settings(http_write_rate_limit="5/minute").write_rate_limit == "5/minute"
    with pytest.raises(ValueError, match="http_write_rate_limit"):
        Settings(http_write_rate_limit="often")


async def test_writes_past_the_limit_are_429_with_retry_after_per_credential() -> None:
    app = make_app(http_write_rate_limit="3/minute")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        key_a, key_b = {"X-Api-Key": "rak_a"}, {"Authorization": "Bearer token-b"}
        for _ in range(3):
            assert (await c.post("/things", json={"title": "t"}, headers=key_a)).status_code == 200
        r = await c.post("/things", json={"title": "t"}, headers=key_a)
        assert_error(r, 429, "too_many_requests")
        assert 1 <= int(r.headers["retry-after"]) <= 60
        # Another credential has its own allowance; reads are not limited.
        assert (await c.post("/things", json={"title": "t"}, headers=key_b)).status_code == 200
        assert (await c.get("/things/x", headers=key_a)).status_code == 200


# ------------------------------------------------------------------ unexpected errors


@pytest.fixture
def served() -> Iterator[int]:
    """The app on a real uvicorn server (the connection behaviour is the server's), on a free
    port."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    server = uvicorn.Server(uvicorn.Config(make_app(), port=port, log_level="critical"))
    thread = threading.Thread(target=asyncio.run, args=(server.serve(),), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(10)


def _exchange(conn: socket.socket, path: str) -> bytes:
    conn.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data  # the server closed the connection
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length")
    )
    while len(rest) < length:
        rest += conn.recv(65536)
    return head + b"\r\n\r\n" + rest


def test_an_unexpected_error_is_a_500_and_the_connection_stays_usable(served: int) -> None:
    with socket.create_connection(("127.0.0.1", served), timeout=5) as conn:
        for _ in range(2):
            answer = _exchange(conn, "/boom")
            assert answer.startswith(b"HTTP/1.1 500"), answer[:200]
            assert b'"error":"internal_error"' in answer and b"x-correlation-id" in answer.lower()
        answer = _exchange(conn, "/healthz")  # the same keep-alive connection, still open
        assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
