"""The Kafka broker restarted mid-stream: nothing lost, nothing applied twice, no dead letter, and
the services say so quietly (readiness names Kafka; the client's repeating errors are not logged by
the thousand)."""

from __future__ import annotations

import asyncio
import time

import pytest
from system import SERVICE_NAMES, System

pytestmark = [pytest.mark.reliability, pytest.mark.integration]

CUSTOMERS = 1500
DOWN_S = 10
# Warning and error lines a service may write while the broker is down (the old runner's notifier
# wrote ~6,000 a second): state changes and one summary per interval per repeating error.
MAX_LOG_LINES_WHILE_DOWN = 400


def warnings_and_errors(log: bytes) -> int:
    """Lines of a JSON log (``{"ts": ..., "level": ...}``) at warning or above."""
    return sum(
        any(level in line[:64] for level in (b'"level":"warning"', b'"level":"error"'))
        for line in log.splitlines()
    )


async def test_a_broker_restart_is_waited_out(system: System) -> None:
    """A recall is live; orders for 1,500 of its customers stream in. A third of the way in, with
    alerts flowing, the broker stops (SIGTERM), stays down 10 s and starts again; the rest of the
    orders follow.

    Old behaviour caught: the matcher's order handler produces the new alert to alerts.v1 itself, so
    with the broker gone it failed, was retried 5 times over ~3 s and dead-lettered (or the letter
    failed too and the record was skipped), losing the customer's alert; and the notifier logged
    thousands of aiokafka error lines a second.
    """
    cohort = system.cohort(CUSTOMERS)
    letters_before = await system.dead_letters()
    rest = await system.alerts_flowing(cohort)

    logs = {name: system.stack.log_dir / f"{name}.log" for name in SERVICE_NAMES}
    sizes = {name: path.stat().st_size for name, path in logs.items()}
    await asyncio.to_thread(system.kafka.stop)
    down_at = time.monotonic()
    during: dict[str, tuple[int, dict]] = {}
    while time.monotonic() - down_at < DOWN_S:
        for name in SERVICE_NAMES:
            during[name] = await system.readyz(name)
        await asyncio.sleep(1)
    # Warnings and errors: work that goes on without the broker (emails sent, each with its info
    # line) is not noise; the same client error thousands of times a second is.
    lines_while_down = {
        name: warnings_and_errors(path.read_bytes()[sizes[name] :]) for name, path in logs.items()
    }
    await asyncio.to_thread(system.kafka.start)
    await system.publish(rest)

    for name, (status, body) in during.items():
        assert status == 503, f"{name}: {body}"
        assert body["checks"]["kafka"].startswith("unreachable"), f"{name}: {body}"
    noisy = {n: c for n, c in lines_while_down.items() if c > MAX_LOG_LINES_WHILE_DOWN}
    assert not noisy, f"log lines in {DOWN_S} s without a broker: {noisy}"

    await system.applied_once(cohort, within=150)
    letters = await system.new_dead_letters(letters_before)
    assert {name: len(recs) for name, recs in letters.items()} == dict.fromkeys(SERVICE_NAMES, 0)
    await system.all_ready()
