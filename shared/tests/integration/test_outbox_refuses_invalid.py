"""The outbox refuses an event its consumers could not apply, before anything is written."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from recall_shared import events as ev
from recall_shared.envelope import InvalidEvent
from recall_shared.outbox import Outbox

pytestmark = pytest.mark.integration


async def test_an_event_with_nul_is_refused_and_nothing_is_written(infra) -> None:
    outbox = Outbox(source="/tests", service="recall-intake", topic_prefix=infra.prefix)
    now = datetime.now(UTC)
    common: dict[str, Any] = {
        "alert_id": "a-1",
        "customer_id": "c-1",
        "recall_id": "r-1",
        "declared_at": now,
    }
    # Built without validation, as model_construct or model_copy(update=...) would leave it.
    bad = ev.NotAffectedDeclared.model_construct(**common, reason="a\u0000b")
    good = ev.NotAffectedDeclared(**common, reason="fine")

    async with infra.session_factory() as session, session.begin():
        with pytest.raises(InvalidEvent, match="reason: must not contain the NUL character"):
            await outbox.add_many(session, [(good, "good-1"), (bad, "bad-1")])
        # The refusal came before the insert: the transaction is still usable and holds nothing.
        assert await outbox.add(session, good, event_id="good-2") == "good-2"
    assert await infra.scalar("SELECT string_agg(event_id, ',') FROM outbox") == "good-2"
