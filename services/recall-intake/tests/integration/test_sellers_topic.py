"""Keys issued and revoked go out on sellers.v1 (hashes only), so other services can authenticate
sellers from their own read model."""

from __future__ import annotations

import pytest

from recall_shared import events as ev
from recall_shared.auth import hash_api_key
from recall_shared.envelope import parse
from recall_shared.testing import read_topic

pytestmark = pytest.mark.integration


async def test_issue_and_revoke_are_published_with_the_hash_never_the_key(intake) -> None:
    operator = await intake.operator_key()
    await intake.client.post(
        "/v1/operator/sellers",
        json={"seller_id": "s-topic", "name": "S"},
        headers={"X-Api-Key": operator},
    )
    issued = await intake.client.post(
        "/v1/operator/api-keys",
        json={"role": "seller", "seller_id": "s-topic"},
        headers={"X-Api-Key": operator},
    )
    assert issued.status_code == 201
    key, key_id = issued.json()["api_key"], issued.json()["key_id"]
    revoked = await intake.client.delete(
        f"/v1/operator/api-keys/{key_id}", headers={"X-Api-Key": operator}
    )
    assert revoked.status_code == 204

    records = await read_topic(intake.topic("sellers.v1"), count=3, timeout=20)
    events = [parse(env) for _, env, _ in records if env is not None]
    mine = [e for e in events if getattr(e, "key_id", None) == key_id]
    assert [e.event_type for e in mine] == ["seller.api_key_issued.v1", "seller.api_key_revoked.v1"]
    issued = mine[0]
    assert isinstance(issued, ev.ApiKeyIssued)
    assert issued.key_hash == hash_api_key(key, intake.settings.api_key_pepper)
    assert issued.seller_id == "s-topic" and issued.role == "seller"
    assert all(key not in (env.data.decode()) for _, env, _ in records if env is not None)
