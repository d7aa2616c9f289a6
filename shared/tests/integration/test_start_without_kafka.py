"""A service whose Kafka is unreachable at start-up still starts: HTTP answers, /readyz says what is
missing, and once the broker can be reached the relay and the consumers start by themselves."""

from __future__ import annotations

import asyncio
import contextlib
import socket

import pytest

from recall_shared import events as ev
from recall_shared.service import ServiceRuntime
from recall_shared.testing import eventually, kafka_bootstrap
from recall_shared.topics import ALERTS

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _forward(port: int, target: tuple[str, int]) -> asyncio.Server:
    """A TCP forwarder to the real broker: 'Kafka comes back' when it starts listening."""

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*target)
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    return await asyncio.start_server(handle, "127.0.0.1", port)


async def _ignore(session, event, env) -> None:
    return None


async def test_a_service_starts_without_kafka_and_connects_when_it_comes(infra) -> None:
    await infra.create_topics(ALERTS)
    port = _free_port()  # nothing listens here yet
    runtime = ServiceRuntime(infra.settings(kafka_bootstrap_servers=f"127.0.0.1:{port}"))
    runtime.add_consumer([ALERTS], {ev.AlertClosed: _ignore})
    await asyncio.wait_for(runtime.start(), 30)
    forwarder = None
    try:
        assert runtime.producer is None and "kafka-connect" in runtime._tasks
        checks = await runtime.readiness()
        assert checks["database"] == "ok" and checks["kafka"].startswith("unreachable")
        assert checks["background_tasks"] == "ok"
        assert not any(name.startswith(("consumer-", "outbox-relay")) for name in runtime._tasks)

        host, kafka_port = kafka_bootstrap().split(",")[0].rsplit(":", 1)
        forwarder = await _forward(port, (host, int(kafka_port)))

        async def connected() -> bool:
            return runtime.producer is not None and (await runtime.readiness())["kafka"] == "ok"

        await eventually(connected, timeout=40)
        assert {"consumer-0", "outbox-relay"} <= set(runtime._tasks)
        assert (await runtime.readiness())["background_tasks"] == "ok"
    finally:
        await asyncio.wait_for(runtime.stop(), 30)
        if forwarder is not None:
            forwarder.close()


async def test_stopping_while_still_connecting_is_prompt(infra) -> None:
    runtime = ServiceRuntime(infra.settings(kafka_bootstrap_servers=f"127.0.0.1:{_free_port()}"))
    await asyncio.wait_for(runtime.start(), 30)
    assert runtime.producer is None
    await asyncio.wait_for(runtime.stop(), 15)
    assert runtime._tasks == {}
