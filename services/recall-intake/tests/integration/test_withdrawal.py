"""A recall that ends because it was withdrawn (issued in error), not completed: the close route
says so, recall.closed.v1 carries it (``withdrawn``, ``reason``) and the recall reads back so."""

from __future__ import annotations

import pytest

from recall_shared.envelope import parse
from recall_shared.events import RecallClosed
from recall_shared.testing import read_topic

pytestmark = pytest.mark.integration


async def _published(intake, make_recall_body, unique) -> tuple[str, dict[str, str]]:
    seller_id, key = await intake.seller_key()
    product = unique("prod")
    await intake.listing(product, [seller_id])
    headers = {"X-Api-Key": key}
    created = await intake.client.post(
        "/v1/recalls", json=make_recall_body(product), headers=headers
    )
    assert created.status_code == 201, created.text
    rid = created.json()["recall_id"]
    assert (await intake.client.post(f"/v1/recalls/{rid}/publish", headers=headers)).is_success
    return rid, headers


async def test_a_withdrawn_recall_says_so_on_recalls_v1(intake, make_recall_body, unique) -> None:
    rid, headers = await _published(intake, make_recall_body, unique)
    reason = "Issued in error: the batch tested safe."
    r = await intake.client.post(
        f"/v1/recalls/{rid}/close", json={"withdrawn": True, "reason": reason}, headers=headers
    )
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["withdrawn"], r.json()["close_reason"]) == (
        "closed",
        True,
        reason,
    )
    got = (await intake.client.get(f"/v1/recalls/{rid}", headers=headers)).json()
    assert got["withdrawn"] is True and got["close_reason"] == reason

    records = await read_topic(intake.topic("recalls.v1"), count=2, timeout=20)
    closed = [parse(env) for _, env, _ in records if env is not None and env.subject == rid]
    last = closed[-1]
    assert isinstance(last, RecallClosed) and (last.withdrawn, last.reason) == (True, reason)


async def test_a_plain_close_is_a_completion_and_bad_bodies_are_refused(
    intake, make_recall_body, unique
) -> None:
    rid, headers = await _published(intake, make_recall_body, unique)
    for body, field in (({"withdrawn": True, "reason": "a\u0000b"}, "reason"), ({"why": 1}, "why")):
        refused = await intake.client.post(f"/v1/recalls/{rid}/close", json=body, headers=headers)
        assert refused.status_code == 422 and field in refused.text, refused.text
    closed = await intake.client.post(f"/v1/recalls/{rid}/close", headers=headers)
    assert closed.status_code == 200 and closed.json()["withdrawn"] is False
