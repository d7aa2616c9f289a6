"""The parsers on the real regulator files in tests/data/regulators (see its README.md for origins:
FDA/openfda @ 2c152208, peggybustamante/python-samples @ a0e67739, shubhL-research/canon-event @
7ea2ef60)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from recall_intake.importers import RecordError, parse_record
from recall_intake.importers.reader import UnreadableFile, open_records

DATA = Path(__file__).resolve().parents[1] / "data" / "regulators"
OPENFDA = DATA / "openfda_res_ucm308307_enforcement_2012-06.jsonl"
GSA = DATA / "gsa_recalls_api_cpsc_2013.json"
SEEDS = DATA / "canon-event_seeds_cpsc_and_eu_safetygate_2024-2026.json"


def _records(path: Path) -> list[Any]:
    return list(open_records(path)[1])


def _by(records: list[Any], key: str, value: str) -> dict[str, Any]:
    return next(r for r in records if str(r.get(key)) == value)


def _fda(number: str) -> dict[str, Any]:
    return next(r for r in _records(OPENFDA) if number in r["product-description"])


def test_the_files_are_read_in_every_shape() -> None:
    assert open_records(OPENFDA)[0] == 72  # JSON lines
    assert open_records(GSA)[0] == 50  # {"success": {"results": [...]}}
    assert open_records(SEEDS)[0] == 207  # {"seeds": [...]}
    with pytest.raises(UnreadableFile):
        open_records(DATA / "no-such-file.json")


def test_openfda_listeria_sandwiches() -> None:
    imp = parse_record("openfda", _fda("F-1336-2012"))
    assert (imp.agency, imp.reference, imp.classification, imp.severity) == (
        "FDA",
        "F-1336-2012",
        "Class I",
        "critical",
    )
    assert [r.number for r in imp.references()] == ["F-1336-2012", "F-1337-2012", "F-1338-2012"]
    assert imp.units_affected == 529327 and imp.hazard_type == "contamination"
    assert str(imp.published_on) == "2012-06-13" and imp.brand == "M.E. Thompson Inc."
    assert imp.stop_using.startswith("Do not eat or serve")
    scope = {
        "lots": {"ranges": [{"first": "00112", "last": "10412"}], "collation": "numeric"},
        "expiry": {"start": "2012-01-19", "end": "2012-05-02"},
    }
    assert imp.rules == [
        {"gtins": [g], **scope} for g in ("00705432001945", "00705432001969", "00705432001563")
    ]
    prov = imp.provenance()
    assert {
        "field": "product-description",
        "text": "7 05432 00194 5",
        "value": "00705432001945",
    } in prov["extracted"]["gtin"]
    assert prov["extracted"]["lots"][0]["text"] == "lot number from 00112 through 10412"
    assert prov["extracted"]["units_affected"] == [
        {"field": "product-quantity", "text": "529,327 units", "value": 529327}
    ]
    assert any(f["text"] == "UPC 0543200156" for f in prov["flagged"])


def test_openfda_lettered_items_get_their_own_lots() -> None:
    imp = parse_record("openfda", _fda("F-1398-2012"))  # Taylor Farms spinach
    assert imp.rules == [
        {
            "gtins": ["00011110911285"],
            "lots": {
                "values": ["TFRS 130B 1503 KT34", "TFRS 130B 1803 KT34"],
                "collation": "natural",
            },
            "best_before": {"start": "2012-05-25", "end": "2012-05-25"},
        },
        {
            "gtins": ["00681131329002"],
            "lots": {"values": ["TFRS130B16"], "collation": "natural"},
            "best_before": {"start": "2012-05-25", "end": "2012-05-25"},
        },
    ]


def test_openfda_numbered_code_groups_map_to_their_items() -> None:
    imp = parse_record(
        "openfda", _fda("F-1355-2012")
    )  # Roma Bakery: 1)-10) 5/25/12, 11)-13) 5/26/12, 14)-17) 5/25/12
    expiry = {r["gtins"][0]: r["expiry"]["start"] for r in imp.rules}
    assert expiry["00200006804996"] == "2012-05-25"  # item 1
    assert expiry["00200006403793"] == "2012-05-26"  # item 12
    assert any(
        "item 6)" in w for w in imp.warnings
    )  # its UPC does not verify: not in the scope, said so


def test_openfda_unusable_records_fail() -> None:
    with pytest.raises(RecordError, match="without a recall number"):
        parse_record("openfda", _by(_records(OPENFDA), "product-description", "Metoprolol"))
    with pytest.raises(RecordError, match="not a openfda record"):
        parse_record("openfda", _records(SEEDS)[0])


def test_gsa_cpsc_models_serials_and_upcs() -> None:
    records = _records(GSA)
    bulbs = parse_record("cpsc-gsa", _by(records, "recall_number", "14702"))
    assert (bulbs.agency, bulbs.reference, str(bulbs.published_on)) == (
        "CPSC",
        "14702",
        "2013-11-05",
    )
    assert bulbs.severity == "high" and bulbs.hazard_type == "fire"
    assert bulbs.rules == [{"model_numbers": ["UDC3CW", "UDC3WW"]}]
    assert bulbs.provenance()["extracted"]["model_number"][0] == {
        "field": "descriptions[0]",
        "text": "model numbers are UDC3CW in cool white, and UDC3WW",
        "value": "UDC3CW",
    }
    blenders = parse_record("cpsc-gsa", _by(records, "recall_number", "13288"))
    assert blenders.rules == [
        {
            "model_numbers": ["FPJB56B7MS"],
            "serials": {
                "ranges": [{"first": "FFP 49 1203 0001", "last": "FFP 49 1237 00974"}],
                "collation": "natural",
            },
        }
    ]
    pan = parse_record("cpsc-gsa", _by(records, "recall_number", "13748"))
    assert pan.rules == [{"gtins": ["00707569068464"]}]
    philips = parse_record("cpsc-gsa", _by(records, "recall_number", "13265"))  # upcs ["46677"]
    assert philips.rules == [] and philips.flags[0].text == "UPC 46677"
    assert (
        parse_record("auto", _by(records, "recall_number", "13277")).rules[0]["serials"][
            "prefixes"
        ][0]
        == "12J"
    )


def test_canon_seeds_cpsc_and_safety_gate() -> None:
    records = _records(SEEDS)
    echo = parse_record("cpsc", _by(records, "ref", "24329"))
    assert (echo.agency, echo.reference, echo.brand, echo.severity) == (
        "CPSC",
        "24329",
        "ECHO Inc.",
        "high",
    )
    assert echo.rules == [{"model_numbers": ["PB-5810H"]}]
    assert "model:echo:PB5810H" in echo.match_keys
    replay = parse_record("safety-gate", _by(records, "ref", "A12/02381/24"))
    assert (replay.agency, replay.reference, replay.url) == (
        "EU_SAFETY_GATE",
        "A12/02381/24",
        "https://ec.europa.eu/safety-gate-alerts/screen/webReport/alertDetail/10013972",
    )
    assert replay.rules == [{"gtins": ["00737052268675"], "model_numbers": ["82411614"]}]
    assert replay.hazard_type == "chemical" and replay.severity == "medium"
    assert replay.provenance()["extracted"]["gtin"] == [
        {"field": "gtin", "text": "GTIN 737052268675", "value": "00737052268675"}
    ]
    # A 10-digit "GTIN" and a too-generic model: nothing reliable, so no rule; both flagged.
    lamp = parse_record("auto", _by(records, "ref", "A12/02550/24"))
    assert lamp.rules == [] and {f.kind for f in lamp.flags} == {"gtin", "model_number"}


def test_cpsc_api_error_returned_as_a_record() -> None:
    with pytest.raises(RecordError, match="error returned as a record"):
        parse_record(
            "cpsc",
            {"RecallID": 0, "RecallNumber": "", "Title": "", "Description": "", "Products": []},
        )
    with pytest.raises(RecordError, match="unrecognised record shape"):
        parse_record("auto", {"hello": "world"})


def test_cpsc_api_record() -> None:
    # The live API's shape (fields as saferproducts.gov/RestWebServices/Recall returns them).
    imp = parse_record(
        "cpsc",
        {
            "RecallID": 9999,
            "RecallNumber": "24329",
            "RecallDate": "2024-08-01T00:00:00",
            "Title": "ECHO Recalls Gas-Powered Backpack Blowers Due to Fire Hazard",
            "URL": "https://www.cpsc.gov/Recalls/2024/ECHO-Recalls-Gas-Powered-Backpack-Blowers-Due-to-Fire-Hazard",
            "Products": [
                {
                    "Name": "ECHO gas-powered backpack blowers",
                    "Model": "PB-5810H",
                    "NumberOfUnits": "About 16,000",
                }
            ],
            "ProductUPCs": [{"UPC": "0-11110-91128-5"}],
            "Hazards": [{"Name": "The fuel supply line can leak gas, posing a fire hazard."}],
            "Remedies": [{"Name": "Repair"}],
            "Manufacturers": [{"Name": "ECHO Inc."}],
        },
    )
    assert (
        imp.reference == "24329"
        and imp.units_affected == 16000
        and imp.remedies == [{"type": "repair"}]
    )
    assert imp.rules == [{"model_numbers": ["PB-5810H"]}, {"gtins": ["00011110911285"]}]


def test_every_record_of_every_file_parses_or_fails_cleanly() -> None:
    counts = {}
    for path in (OPENFDA, GSA, SEEDS):
        ok = failed = with_rules = 0
        for raw in _records(path):
            try:
                imp = parse_record("auto", raw)
            except RecordError:
                failed += 1
                continue
            ok += 1
            with_rules += bool(imp.rules)
            assert imp.title and imp.stop_using and imp.content()  # a valid RecallContent
        counts[path.name] = (ok, with_rules, failed)
    assert counts[OPENFDA.name][0] == 70 and counts[OPENFDA.name][2] == 2
    assert counts[GSA.name][:1] == (50,) and counts[SEEDS.name][:1] == (207,)
