"""Letters of Compliance in recall-intake, on a real PostgreSQL and Kafka: a seller declares the
corrected scope of its stock of a recalled listing; an operator accepts it, and
compliance_letter.accepted.v1 goes out on compliance_letters.v1 once (the stop-sale's lifting is
purchase-matcher's, tested there); a letter by serial ranges and best-before date, accepted and then
withdrawn (compliance_letter.withdrawn.v1). Refusals name the field or the state."""

from __future__ import annotations

from typing import Any

import pytest

from recall_shared import events as ev
from recall_shared.envelope import parse
from recall_shared.testing import read_topic

pytestmark = pytest.mark.integration


async def test_a_seller_declares_a_corrected_scope_and_an_operator_accepts_it(
    intake: Any, make_recall_body: Any, unique: Any
) -> None:
    seller_id, seller_key = await intake.seller_key()
    seller = {"X-Api-Key": seller_key}
    operator = {"X-Api-Key": await intake.operator_key()}
    kettle = unique("kettle")
    await intake.listing(kettle, [seller_id])
    created = await intake.client.post(
        "/v1/recalls", json=make_recall_body(kettle), headers=operator
    )
    recall_id = created.json()["recall_id"]
    letters = f"/v1/sellers/{seller_id}/compliance-letters"
    body = {"recall_id": recall_id, "product_id": kettle, "made_after": "2025-07-01"}

    draft = await intake.client.post(letters, json=body, headers=seller)
    assert draft.status_code == 409 and "draft" in draft.text  # not published yet
    await intake.client.post(f"/v1/recalls/{recall_id}/publish", headers=operator)

    unscoped = await intake.client.post(
        letters, json={"recall_id": recall_id, "product_id": kettle}, headers=seller
    )
    assert unscoped.status_code == 422 and "made_after" in unscoped.text
    not_listed = await intake.client.post(
        letters, json={**body, "product_id": unique("other")}, headers=seller
    )
    assert not_listed.status_code == 409 and "product_id" in not_listed.text
    other_seller, _ = await intake.seller_key()
    foreign = await intake.client.post(
        f"/v1/sellers/{other_seller}/compliance-letters", json=body, headers=seller
    )
    assert foreign.status_code == 404

    headers = {**seller, "Idempotency-Key": "loc-1"}
    submitted = await intake.client.post(letters, json=body, headers=headers)
    assert submitted.status_code == 201, submitted.text
    letter = submitted.json()
    assert letter["status"] == "submitted" and letter["made_after"] == "2025-07-01"
    retried = await intake.client.post(letters, json=body, headers=headers)
    assert retried.json()["letter_id"] == letter["letter_id"]
    assert retried.headers["Idempotent-Replayed"] == "true"

    path = f"/v1/operator/compliance-letters/{letter['letter_id']}"
    by_seller = await intake.client.post(f"{path}/acceptance", json={}, headers=seller)
    assert by_seller.status_code == 403
    accepted = await intake.client.post(f"{path}/acceptance", json={}, headers=operator)
    assert accepted.status_code == 200 and accepted.json()["status"] == "accepted"
    again = await intake.client.post(f"{path}/acceptance", json={}, headers=operator)
    assert again.json() == accepted.json()
    rejected = await intake.client.post(f"{path}/rejection", json={"note": "no"}, headers=operator)
    assert rejected.status_code == 409

    listed = await intake.client.get("/v1/compliance-letters", headers=seller)
    assert [x["letter_id"] for x in listed.json()["items"]] == [letter["letter_id"]]

    await intake.outbox_drained()
    records = await read_topic(intake.topic("compliance_letters.v1"), count=1, timeout=20)
    events = [parse(env) for _, env, _ in records if env is not None]
    assert events == [
        ev.ComplianceLetterAccepted(
            letter_id=letter["letter_id"],
            recall_id=recall_id,
            product_id=kettle,
            seller_id=seller_id,
            made_after=letter["made_after"],
            accepted_at=events[0].accepted_at,  # type: ignore[attr-defined]
        )
    ]
    assert records[0][0] == recall_id.encode()  # keyed by recall, as the topic says


async def test_a_letter_by_serials_and_best_before_is_accepted_then_withdrawn(
    intake: Any, make_recall_body: Any, unique: Any
) -> None:
    seller_id, seller_key = await intake.seller_key()
    seller = {"X-Api-Key": seller_key}
    operator = {"X-Api-Key": await intake.operator_key()}
    kettle = unique("kettle")
    await intake.listing(kettle, [seller_id])
    created = await intake.client.post(
        "/v1/recalls", json=make_recall_body(kettle), headers=operator
    )
    recall_id = created.json()["recall_id"]
    await intake.client.post(f"/v1/recalls/{recall_id}/publish", headers=operator)
    letters = f"/v1/sellers/{seller_id}/compliance-letters"
    body = {
        "recall_id": recall_id,
        "product_id": kettle,
        "serials": [{"first": "SN2000", "last": "SN2999"}],
        "best_before_after": "2026-03-31",
    }
    bad = await intake.client.post(
        letters, json={**body, "serials": [{"first": "SN2000"}]}, headers=seller
    )
    assert bad.status_code == 422 and "serials" in bad.text
    submitted = await intake.client.post(letters, json=body, headers=seller)
    assert submitted.status_code == 201, submitted.text
    letter = submitted.json()
    assert letter["serials"] == body["serials"] and letter["best_before_after"] == "2026-03-31"

    path = f"/v1/operator/compliance-letters/{letter['letter_id']}"
    early = await intake.client.post(f"{path}/withdrawal", json={"note": "x"}, headers=operator)
    assert early.status_code == 409  # only an accepted letter is withdrawn
    accepted = await intake.client.post(f"{path}/acceptance", json={}, headers=operator)
    assert accepted.json()["status"] == "accepted"
    unexplained = await intake.client.post(f"{path}/withdrawal", json={}, headers=operator)
    assert unexplained.status_code == 422 and "note" in unexplained.text
    by_seller = await intake.client.post(f"{path}/withdrawal", json={"note": "x"}, headers=seller)
    assert by_seller.status_code == 403
    note = {"note": "the supplier's serials were wrong"}
    withdrawn = await intake.client.post(f"{path}/withdrawal", json=note, headers=operator)
    assert withdrawn.status_code == 200 and withdrawn.json()["status"] == "withdrawn"
    again = await intake.client.post(f"{path}/withdrawal", json=note, headers=operator)
    assert again.json() == withdrawn.json()
    reaccepted = await intake.client.post(f"{path}/acceptance", json={}, headers=operator)
    assert reaccepted.status_code == 409  # a new letter, not this one again

    await intake.outbox_drained()
    records = await read_topic(intake.topic("compliance_letters.v1"), count=2, timeout=20)
    accepted_event, withdrawn_event = [parse(env) for _, env, _ in records if env is not None]
    assert isinstance(accepted_event, ev.ComplianceLetterAccepted)
    assert accepted_event.serials == [ev.CodeRange(first="SN2000", last="SN2999")]
    assert str(accepted_event.best_before_after) == "2026-03-31"
    assert isinstance(withdrawn_event, ev.ComplianceLetterWithdrawn)
    assert (
        withdrawn_event.letter_id == letter["letter_id"] and withdrawn_event.reason == note["note"]
    )
