"""Regulator import against the real database: whole files, re-imports, re-publication, the
cross-agency link, the import-recalls command and POST /v1/imports/{format}.

Records come from tests/data/regulators (origins in its README.md: FDA/openfda @ 2c152208,
peggybustamante/python-samples @ a0e67739, shubhL-research/canon-event @ 7ea2ef60)."""

from __future__ import annotations

import asyncio
import copy
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from recall_intake.cli import main
from recall_intake.importers import import_record, parse_record
from recall_intake.importers.reader import open_records
from recall_intake.models import Recall, RegulatorRecord

pytestmark = pytest.mark.integration

DATA = Path(__file__).resolve().parents[1] / "data" / "regulators"
OPENFDA = DATA / "openfda_res_ucm308307_enforcement_2012-06.jsonl"
GSA = DATA / "gsa_recalls_api_cpsc_2013.json"
SEEDS = DATA / "canon-event_seeds_cpsc_and_eu_safetygate_2024-2026.json"


def _records(path: Path) -> list[Any]:
    return list(open_records(path)[1])


async def _import_all(intake, path: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for raw in _records(path):
        try:
            imported = parse_record("auto", raw)
        except Exception:
            counts["failed"] = counts.get("failed", 0) + 1
            continue
        async with intake.session_factory() as session:
            outcome = await import_record(session, imported)
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    return counts


async def test_whole_files_import_once_and_a_second_time_create_nothing(intake) -> None:
    assert await _import_all(intake, OPENFDA) == {"created": 70, "failed": 2}
    assert await _import_all(intake, GSA) == {"created": 50}
    assert await _import_all(intake, SEEDS) == {
        "created": 207
    }  # no CPSC/Safety Gate pair shares a product
    assert await intake.scalar("SELECT count(*) FROM recalls WHERE source = 'import'") == 327
    assert (
        await intake.scalar("SELECT count(*) FROM recalls WHERE rules <> '[]'::jsonb")
        == 10 + 15 + 177
    )
    # The same files again: every record skipped, no second recall.
    assert await _import_all(intake, OPENFDA) == {"skipped": 70, "failed": 2}
    assert await intake.scalar("SELECT count(*) FROM recalls") == 327
    assert await intake.scalar("SELECT min(times_seen) FROM regulator_records") == 1
    assert await intake.scalar("SELECT count(*) FROM regulator_records WHERE times_seen = 2") == 70

    async with intake.session_factory() as session:
        ref = await session.get(RegulatorRecord, ("FDA", "F-1336-2012"))
        recall = await session.get(Recall, ref.recall_id)
    assert (recall.status, recall.seller_id, recall.owner_key, recall.source) == (
        "draft",
        None,
        "operator",
        "import",
    )
    assert recall.content["severity"] == "critical" and recall.content["units_affected"] == 529327
    assert recall.content["remedies"] == [{"type": "refund_on_destruction", "instructions": ""}]
    assert [r["number"] for r in recall.content["regulator_references"]] == [
        "F-1336-2012",
        "F-1337-2012",
        "F-1338-2012",
    ]
    assert recall.rules[0]["gtins"] == ["00705432001945"]
    assert recall.rules[0]["lots"]["ranges"] == [{"first": "00112", "last": "10412"}]
    assert (
        recall.provenance["extracted"]["expiry"][0]["text"]
        == "Expiration dates from 01/19/2012 through 05/02/2012"
    )


async def test_republished_record_with_a_changed_body_is_skipped(intake) -> None:
    raw = next(r for r in _records(GSA) if r["recall_number"] == "14702")
    async with intake.session_factory() as session:
        first = await import_record(session, parse_record("cpsc-gsa", raw))
    changed = copy.deepcopy(raw)
    changed["descriptions"][0] += ", sold at Home Depot"
    async with intake.session_factory() as session:
        again = await import_record(session, parse_record("cpsc-gsa", changed))
    assert (
        first.status == "created"
        and again.status == "skipped"
        and again.recall_id == first.recall_id
    )
    assert again.reason.startswith("already imported") and "changed" in again.reason
    assert (
        await intake.scalar("SELECT times_seen FROM regulator_records WHERE reference = '14702'")
        == 2
    )
    assert await intake.scalar("SELECT count(*) FROM recalls") == 1


async def test_same_event_from_two_agencies_is_linked(intake) -> None:
    seeds = _records(SEEDS)
    eu = next(r for r in seeds if r["ref"] == "A12/02381/24")  # Replay fragrance, GTIN 737052268675
    # A CPSC record of the same product a month later (constructed: no CPSC seed carries a GTIN).
    us = {
        "RecallID": 1,
        "RecallNumber": "24999",
        "RecallDate": "2024-09-26T00:00:00",
        "Title": "Replay fragrance",
        "Products": [{"Name": "Replay Your fragrance Woman"}],
        "ProductUPCs": [{"UPC": "737052268675"}],
        "Hazards": [{"Name": "Contains BMHCA"}],
    }
    async with intake.session_factory() as session:
        created = await import_record(session, parse_record("auto", eu))
    async with intake.session_factory() as session:
        linked = await import_record(session, parse_record("auto", us))
    assert (
        created.status == "created"
        and linked.status == "linked"
        and linked.recall_id == created.recall_id
    )
    async with intake.session_factory() as session:
        recall = await session.get(Recall, created.recall_id)
        records = (
            (await session.execute(select(RegulatorRecord).order_by(RegulatorRecord.agency)))
            .scalars()
            .all()
        )
    assert [(r["agency"], r["number"]) for r in recall.content["regulator_references"]] == [
        ("EU_SAFETY_GATE", "A12/02381/24"),
        ("CPSC", "24999"),
    ]
    assert [(r.agency, r.reference, r.recall_id) for r in records] == [
        ("CPSC", "24999", created.recall_id),
        ("EU_SAFETY_GATE", "A12/02381/24", created.recall_id),
    ]
    assert recall.provenance["linked_records"][0]["reference"] == "24999"
    # Outside the window it is another recall; the same agency never links to itself.
    far = dict(us, RecallNumber="26999", RecallDate="2026-01-05T00:00:00")
    other_eu = dict(eu, ref="A12/09999/24")
    async with intake.session_factory() as session:
        assert (await import_record(session, parse_record("auto", far))).status == "created"
    async with intake.session_factory() as session:
        assert (await import_record(session, parse_record("auto", other_eu))).status == "created"


@pytest.fixture
def restore_logging():
    """The command configures logging onto the captured stderr; put the test session's logging back
    after."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


async def test_import_command_on_a_file(
    intake, tmp_path, monkeypatch, capsys, restore_logging
) -> None:
    records = [*_records(SEEDS)[:20], {"RecallID": 0, "RecallNumber": None}, {"hello": "world"}]
    path = tmp_path / "cpsc.json"
    path.write_text(json.dumps(records))
    monkeypatch.setenv("RECALL_INTAKE_DATABASE_URL", intake.settings.database_url)
    monkeypatch.setenv("RECALL_INTAKE_LOG_JSON", "false")
    assert await asyncio.to_thread(main, ["import-recalls", "--format", "cpsc", str(path)]) == 0
    out, err = capsys.readouterr()
    assert "22/22  created 20  linked 0  skipped 0  failed 2" in err
    assert "22 records: created 20 (12 with rules, 8 without), linked 0, skipped 0, failed 2" in out
    assert "failed 1: CPSC API error returned as a record" in out
    assert "failed 1: unrecognised record shape" in out
    # Again: all skipped. An unreadable file: exit code 1.
    assert await asyncio.to_thread(main, ["import-recalls", "--format", "auto", str(path)]) == 0
    assert (
        "created 0 (0 with rules, 0 without), linked 0, skipped 20, failed 2"
        in capsys.readouterr().out
    )
    (tmp_path / "bad.json").write_text("{not json")
    assert (
        await asyncio.to_thread(
            main, ["import-recalls", "--format", "auto", str(tmp_path / "bad.json")]
        )
        == 1
    )
    assert "cannot read" in capsys.readouterr().err


async def test_import_endpoint(intake) -> None:
    operator = {"X-Api-Key": await intake.operator_key()}
    _, seller_key = await intake.seller_key()
    record = next(r for r in _records(OPENFDA) if "F-1398-2012" in r["product-description"])

    assert (await intake.client.post("/v1/imports/openfda", json=record)).status_code == 401
    assert (
        await intake.client.post(
            "/v1/imports/openfda", json=record, headers={"X-Api-Key": "not-a-key"}
        )
    ).status_code == 401
    assert (
        await intake.client.post(
            "/v1/imports/openfda", json=record, headers={"X-Api-Key": seller_key}
        )
    ).status_code == 403

    created = await intake.client.post("/v1/imports/openfda", json=record, headers=operator)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["outcome"]["status"] == "created" and body["outcome"]["reference"] == "F-1398-2012"
    assert body["recall"]["status"] == "draft" and body["recall"]["source"] == "import"
    assert body["recall"]["rules"][0]["gtins"] == ["00011110911285"]
    assert body["recall"]["provenance"]["extracted"]["gtin"][0]["text"] == "UPC 0-11110-91128-5"

    again = await intake.client.post("/v1/imports/auto", json=record, headers=operator)
    assert again.status_code == 200 and again.json()["outcome"]["status"] == "skipped"
    assert again.json()["recall"]["recall_id"] == body["recall"]["recall_id"]

    for bad, fmt, words in (
        ({"RecallID": 0, "RecallNumber": ""}, "cpsc", "error returned as a record"),
        (
            {"code-info": "Lot 1", "product-description": "Metoprolol"},
            "openfda",
            "without a recall number",
        ),
        ({"hello": "world"}, "auto", "unrecognised record shape"),
        (record, "safety-gate", "not a safety-gate record"),
    ):
        r = await intake.client.post(f"/v1/imports/{fmt}", json=bad, headers=operator)
        assert r.status_code == 422, r.text
        assert (
            r.json()["detail"]["error"] == "unusable_record"
            and words in r.json()["detail"]["message"]
        )
    assert (
        await intake.client.post("/v1/imports/openfda", json=[1, 2], headers=operator)
    ).status_code == 422
    assert (
        await intake.client.post("/v1/imports/nope", json=record, headers=operator)
    ).status_code == 422

    # An imported draft without rules cannot be published until an operator adds one.
    no_rules = next(r for r in _records(GSA) if r["recall_number"] == "14014")
    draft = (
        await intake.client.post("/v1/imports/cpsc-gsa", json=no_rules, headers=operator)
    ).json()["recall"]
    assert draft["rules"] == []
    refused = await intake.client.post(
        f"/v1/recalls/{draft['recall_id']}/publish", headers=operator
    )
    assert refused.status_code == 422 and refused.json()["detail"]["error"] == "scope_missing"
