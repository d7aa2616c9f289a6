"""The committed JSON Schemas are the event contracts: they must match the models, and the checker
must catch a change that would break an existing consumer."""

from __future__ import annotations

import copy
import json
from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from recall_shared import schemas
from recall_shared.events import ALL_EVENTS


def test_committed_schemas_match_the_models() -> None:
    fresh = schemas.generate()
    committed = schemas.committed()
    assert sorted(committed) == sorted(cls.event_type for cls in ALL_EVENTS), "run `make schemas`"
    for event_type, schema in fresh.items():
        assert committed[event_type] == json.loads(json.dumps(schema)), (
            f"{event_type} changed: run `make schemas`"
        )


def test_committed_asyncapi_matches_the_catalog() -> None:
    assert schemas.main(["check"]) == 0
    doc = json.loads(schemas.ASYNCAPI_PATH.read_text())
    assert doc["asyncapi"].startswith("3.")
    assert "alert.raised.v1" in [m["name"] for m in doc["components"]["messages"].values()]
    assert doc["channels"]["alerts.v1"]["x-key"] == "customer id"


def test_the_committed_contracts_have_no_breaking_change_against_themselves() -> None:
    for event_type, schema in schemas.committed().items():
        assert schemas.breaking_changes(schema, schema) == [], event_type


class _V1(BaseModel):
    alert_id: str
    units: int
    tier: Literal["confirmed", "possibly_affected"]
    note: str | None = None
    at: datetime


def _schema(model: type[BaseModel]) -> dict:
    return model.model_json_schema(mode="serialization")


def test_adding_an_optional_field_is_compatible() -> None:
    class V(_V1):
        extra: str | None = None

    assert schemas.breaking_changes(_schema(_V1), _schema(V)) == []


def test_removing_a_field_breaks_consumers() -> None:
    new = copy.deepcopy(_schema(_V1))
    del new["properties"]["note"]
    assert any("note: removed" in p for p in schemas.breaking_changes(_schema(_V1), new))


def test_changing_a_type_breaks_consumers() -> None:
    class V(BaseModel):
        alert_id: str
        units: str
        tier: Literal["confirmed", "possibly_affected"]
        note: str | None = None
        at: datetime

    assert any(
        p.startswith("units: type changed")
        for p in schemas.breaking_changes(_schema(_V1), _schema(V))
    )


def test_making_a_required_field_optional_breaks_consumers() -> None:
    class V(BaseModel):
        alert_id: str | None = None
        units: int
        tier: Literal["confirmed", "possibly_affected"]
        note: str | None = None
        at: datetime

    problems = schemas.breaking_changes(_schema(_V1), _schema(V))
    assert any("alert_id: was required, now optional" in p for p in problems)


def test_a_new_enum_value_breaks_consumers_that_validate_it() -> None:
    class V(BaseModel):
        alert_id: str
        units: int
        tier: Literal["confirmed", "possibly_affected", "maybe"]
        note: str | None = None
        at: datetime

    assert any(
        "new enum values ['maybe']" in p for p in schemas.breaking_changes(_schema(_V1), _schema(V))
    )


def test_write_refuses_a_breaking_change(tmp_path, monkeypatch, capsys) -> None:
    for name, schema in schemas.committed().items():
        (tmp_path / f"{name}.json").write_text(json.dumps(schema))
    broken = json.loads((tmp_path / "alert.raised.v1.json").read_text())
    broken["$defs"]["AlertState"]["properties"]["legacy_field"] = {"type": "string"}
    (tmp_path / "alert.raised.v1.json").write_text(json.dumps(broken))
    monkeypatch.setattr(schemas, "SCHEMA_DIR", tmp_path)
    monkeypatch.setattr(schemas, "ASYNCAPI_PATH", tmp_path / "asyncapi.json")
    assert schemas.main(["write"]) == 2
    assert "alert.raised.v1: alert.legacy_field: removed" in capsys.readouterr().err
    assert "legacy_field" in (tmp_path / "alert.raised.v1.json").read_text(), (
        "nothing written on refusal"
    )
