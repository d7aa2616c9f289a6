"""A key recall-intake has just issued, before this service has read it from sellers.v1: the answer
says "not known yet, retry" (docs/decisions/0008), and the same request succeeds once it is read."""

from __future__ import annotations

import pytest

from recall_shared.auth import generate_api_key
from recall_shared.testing import eventually

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]


async def test_a_key_not_read_yet_is_409_not_known_yet_then_works(rls) -> None:
    key, _ = await rls.issue_key("operator", wait=False)
    first = await rls.client.get("/v1/cases?limit=1", headers={"X-Api-Key": key})
    # The event may already have been read: then the key simply works.
    if first.status_code != 200:
        assert first.status_code == 409, first.text
        assert first.headers["Retry-After"] == "2"
        body = first.json()
        assert body["error"] == "not_known_yet"
        assert "send the same request again" in body["message"]

    async def works() -> bool:
        r = await rls.client.get("/v1/cases?limit=1", headers={"X-Api-Key": key})
        return r.status_code == 200

    await eventually(works, timeout=15, interval=0.1)


async def test_a_key_of_the_issued_shape_nobody_issued_stays_409(rls) -> None:
    r = await rls.client.get("/v1/cases", headers={"X-Api-Key": generate_api_key()})
    assert r.status_code == 409 and r.json()["error"] == "not_known_yet", r.text


@pytest.mark.parametrize(
    "key", ["", "not-a-key", "rak_" + "x" * 40, "rak_" + "x" * 43 + "!", "RAK_" + "x" * 43]
)
async def test_a_key_of_another_shape_is_401(rls, key: str) -> None:
    r = await rls.client.get("/v1/cases", headers={"X-Api-Key": key})
    assert r.status_code == 401 and r.json()["error"] == "unauthorized", r.text
