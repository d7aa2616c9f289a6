"""Imported records are checked for the type and range of their identifiers and dates: a value of
the wrong type is refused with a per-record error naming the field, never stored as its Python
spelling."""

from __future__ import annotations

from typing import Any

import pytest

from recall_intake.importers import RecordError, parse_record


def _cpsc_api(**fields: Any) -> dict[str, Any]:
    record = {
        "RecallID": 9999,
        "RecallNumber": "24329",
        "RecallDate": "2024-08-01T00:00:00",
        "Title": "ECHO Recalls Backpack Blowers Due to Fire Hazard",
        "Products": [{"Name": "ECHO backpack blowers", "Model": "PB-5810H"}],
        "ProductUPCs": [{"UPC": "0-11110-91128-5"}],
    }
    return record | fields


def _seed(**fields: Any) -> dict[str, Any]:
    record = {
        "authority": "CPSC",
        "ref": "24-123",
        "published": "2024-05-02",
        "name": "Kettle KX-1",
        "model": "KX-100",
    }
    return record | fields


def _safety_gate(**fields: Any) -> dict[str, Any]:
    record = {
        "authority": "SAFETY_GATE",
        "ref": "A12/02381/24",
        "published": "2024-05-02",
        "name": "Toy",
        "gtin": "737052268675",
    }
    return record | fields


def _gsa(**fields: Any) -> dict[str, Any]:
    record = {
        "recall_number": "13123",
        "recall_date": "2013-01-10",
        "descriptions": ["Heaters, model HX-900"],
        "upcs": None,
    }
    return record | fields


def _openfda(**fields: Any) -> dict[str, Any]:
    record = {
        "recall_number": "F-1234-2012",
        "product_description": "Cookies, 12 oz",
        "reason_for_recall": "Undeclared milk",
        "report_date": "20120613",
    }
    return record | fields


def test_well_typed_records_still_parse() -> None:
    imp = parse_record("cpsc", _cpsc_api(RecallNumber=24329))  # a number is a fine recall number
    assert imp.reference == "24329" and str(imp.published_on) == "2024-08-01"
    assert parse_record("auto", _seed()).reference == "24-123"
    assert parse_record("openfda", _openfda()).reference == "F-1234-2012"
    assert parse_record("auto", _safety_gate(published=None)).published_on is None


@pytest.mark.parametrize(
    ("fmt", "record", "message"),
    [
        (
            "cpsc",
            _cpsc_api(RecallNumber={"a": 1}),
            "RecallNumber must be text or a whole number, not an object",
        ),
        (
            "cpsc",
            _cpsc_api(RecallNumber=["24329"]),
            "RecallNumber must be text or a whole number, not an array",
        ),
        ("cpsc", _cpsc_api(RecallNumber=24329.5), "not a fractional number"),
        ("cpsc", _cpsc_api(RecallNumber=True), "not a boolean"),
        ("cpsc", _cpsc_api(RecallNumber=-5), "RecallNumber must not be a negative number"),
        ("cpsc", _cpsc_api(RecallID={"id": 1}), "RecallID must be text or a whole number"),
        (
            "cpsc",
            _cpsc_api(RecallNumber="24\x07329"),
            "RecallNumber must not contain control characters",
        ),
        ("cpsc", _cpsc_api(RecallNumber="2" * 101), "RecallNumber is longer than 100 characters"),
        (
            "cpsc",
            _cpsc_api(Products=[{"Name": "x", "Model": {"m": 1}}]),
            "Products[0].Model must be text",
        ),
        ("cpsc", _cpsc_api(ProductUPCs=[{"UPC": [1]}]), "ProductUPCs[0] must be text"),
        ("auto", _seed(ref={"a": 1}), "ref must be text or a whole number, not an object"),
        ("auto", _seed(model={"m": 1}), "model must be text or a whole number"),
        ("auto", _seed(gtin=False), "gtin must be text or a whole number, not a boolean"),
        ("auto", _gsa(recall_number={"n": 1}), "recall_number must be text or a whole number"),
        ("auto", _gsa(upcs=[{"u": 1}]), "upcs[0] must be text or a whole number"),
        (
            "openfda",
            _openfda(recall_number={"a": 1}),
            "recall_number must be text or a whole number",
        ),
        (
            "openfda",
            _openfda(product_description={"x": 1}),
            "product_description must be text, not an object",
        ),
        ("auto", _safety_gate(ref=["A12"]), "ref must be text or a whole number, not an array"),
        ("auto", _safety_gate(gtin={"g": 1}), "gtin must be text or a whole number"),
    ],
)
def test_an_identifier_or_text_of_the_wrong_type_refuses_the_record(
    fmt: str, record: dict[str, Any], message: str
) -> None:
    with pytest.raises(RecordError) as refused:
        parse_record(fmt, record)
    assert message in str(refused.value)


@pytest.mark.parametrize(
    ("fmt", "record", "message"),
    [
        (
            "cpsc",
            _cpsc_api(RecallDate="2024-02-30"),
            "RecallDate is not a calendar date: '2024-02-30'",
        ),
        (
            "cpsc",
            _cpsc_api(RecallDate="9999-01-01"),
            "RecallDate 9999-01-01 is out of range (1900-01-01 to 2100-12-31)",
        ),
        ("cpsc", _cpsc_api(RecallDate="0001-01-01"), "RecallDate 0001-01-01 is out of range"),
        (
            "cpsc",
            _cpsc_api(RecallDate=20240801),
            "RecallDate must be a date as text (YYYY-MM-DD), not a number",
        ),
        (
            "cpsc",
            _cpsc_api(RecallDate={"y": 2024}),
            "RecallDate must be a date as text (YYYY-MM-DD), not an object",
        ),
        ("cpsc", _cpsc_api(RecallDate="soon"), "RecallDate is not a date (YYYY-MM-DD): 'soon'"),
        ("cpsc", _cpsc_api(RecallDate="2024-08-011"), "RecallDate is not a date"),
        ("auto", _seed(published="2024-13-01"), "published is not a calendar date"),
        ("auto", _gsa(recall_date=["2013-01-10"]), "recall_date must be a date as text"),
        (
            "openfda",
            _openfda(report_date="20121345"),
            "report_date is not a date (YYYYMMDD, MM/DD/YYYY or YYYY-MM-DD)",
        ),
        ("openfda", _openfda(report_date="21120613"), "report_date 2112-06-13 is out of range"),
        (
            "openfda",
            _openfda(report_date=20120613),
            "report_date must be a date as text, not a number",
        ),
        ("auto", _safety_gate(published="2024-5-2"), "published is not a date"),
    ],
)
def test_a_date_that_is_no_date_or_out_of_range_refuses_the_record(
    fmt: str, record: dict[str, Any], message: str
) -> None:
    with pytest.raises(RecordError) as refused:
        parse_record(fmt, record)
    assert message in str(refused.value)
