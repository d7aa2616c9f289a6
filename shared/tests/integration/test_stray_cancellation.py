"""A ``CancelledError`` that escapes aiokafka (it awaits its own cancelled internal tasks, e.g. on
stop) is a failure of the consumer, not a cancellation of the runner: the runner logs it,
restarts the consumer and goes on applying, and its task stays alive. In CI the notifier's sellers
consumer ended for good that way after a broker restart. Real Kafka and PostgreSQL; the stray
error is raised by the real consumer's ``getmany`` and ``stop``, wrapped."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from recall_shared import consumer as consumer_module
from recall_shared import events as ev
from recall_shared.sample_events import alert_closed
from recall_shared.testing import eventually
from recall_shared.topics import ALERTS

pytestmark = pytest.mark.integration


async def test_a_stray_cancelled_error_from_kafka_restarts_the_consumer(
    infra, run_task, monkeypatch, caplog
) -> None:
    await infra.create_topics(ALERTS)
    producer = await infra.producer()
    real_create = consumer_module.create_group_consumer
    made: list[Any] = []

    def create_consumer(*args: Any, **kwargs: Any) -> Any:
        kafka = real_create(*args, **kwargs)
        made.append(kafka)
        if len(made) == 1:  # the first consumer fails from inside, then fails to stop too
            real_getmany, real_stop = kafka.getmany, kafka.stop

            async def getmany(*a: Any, **kw: Any) -> Any:
                got = await real_getmany(*a, **kw)
                if got:
                    raise asyncio.CancelledError()  # as from a cancelled coordinator task
                return got

            async def stop() -> None:
                await real_stop()
                raise asyncio.CancelledError()  # aio-libs/aiokafka#647

            kafka.getmany, kafka.stop = getmany, stop
        return kafka

    monkeypatch.setattr(consumer_module, "create_group_consumer", create_consumer)
    caplog.set_level(logging.INFO, logger="recall_shared.consumer")
    for i in range(6):
        await infra.send(producer, ALERTS, alert_closed(f"al-{i}", f"cust-{i}"))
    runner = infra.runner({ev.AlertClosed: infra.inserting_handler}, [ALERTS], producer=producer)
    async with run_task(runner) as task:

        async def all_applied() -> bool:
            return await infra.applied_count() == 6

        await eventually(all_applied, timeout=40)
        assert not task.done(), "the runner's task ended on a stray CancelledError"
        assert len(made) >= 2, "the consumer was not restarted"
    restarts = [r for r in caplog.records if r.getMessage() == "consumer failed; restarting"]
    assert restarts and restarts[0].exc_info and restarts[0].exc_info[0] is asyncio.CancelledError


async def test_the_runners_own_cancellation_still_ends_it(infra, run_task) -> None:
    await infra.create_topics(ALERTS)
    producer = await infra.producer()
    runner = infra.runner({ev.AlertClosed: infra.inserting_handler}, [ALERTS], producer=producer)
    task = asyncio.create_task(runner.run())

    async def consuming() -> bool:
        return runner.running

    await eventually(consuming, timeout=30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=30)
    assert task.cancelled()
