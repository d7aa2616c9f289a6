"""The notice items the regulators' records state (brand, where and when sold, incidents,
helpline) reach the draft's content, with their provenance; on the real files where they hold
them."""

from __future__ import annotations

from datetime import date
from typing import Any

from recall_intake.importers import RecordError, parse_record
from recall_intake.importers.notice_extract import (
    extract_helpline,
    extract_incidents,
    extract_sale,
)
from recall_shared.notice_items import missing

from .test_import_parsers import GSA, OPENFDA, SEEDS, _by, _fda, _records


def test_openfda_brand_units_and_distribution_from_the_real_file() -> None:
    imp = parse_record("openfda", _fda("F-1336-2012"))
    content = imp.content()
    assert content.brand == "M.E. Thompson Inc."
    assert content.sale_channels == ["Nationwide"]
    assert content.units_affected == 529327
    assert {"field": "distribution-pattern", "text": "Nationwide", "value": ["Nationwide"]} in (
        imp.provenance()["extracted"]["sale_channels"]
    )


def test_gsa_and_seed_brands_from_the_real_files() -> None:
    gsa = parse_record("cpsc-gsa", _by(_records(GSA), "recall_number", "14014")).content()
    assert gsa.brand == "Ryobi"
    seed = parse_record("cpsc", _by(_records(SEEDS), "ref", "24329")).content()
    assert seed.brand == "ECHO Inc."


def _cpsc_api(**extra: Any) -> dict[str, Any]:
    # The live API's shape (saferproducts.gov/RestWebServices/Recall), fields of CPSC recall 24329.
    return {
        "RecallID": 9999,
        "RecallNumber": "24329",
        "RecallDate": "2024-08-01T00:00:00",
        "Title": "ECHO Recalls Gas-Powered Backpack Blowers Due to Fire Hazard",
        "Products": [{"Name": "ECHO gas-powered backpack blowers", "Model": "PB-5810H"}],
        "Hazards": [{"Name": "The fuel supply line can leak gas, posing a fire hazard."}],
        "Remedies": [{"Name": "Repair"}],
        "Manufacturers": [{"Name": "ECHO Inc."}],
        **extra,
    }


def test_cpsc_api_sale_incidents_and_helpline() -> None:
    imp = parse_record(
        "cpsc",
        _cpsc_api(
            Retailers=[
                {
                    "Name": "Sold at authorized ECHO dealers nationwide from January 2023 through "
                    "June 2024 for between $550 and $600."
                }
            ],
            Injuries=[
                {
                    "Name": "ECHO has received 29 reports of fuel leaks. No injuries have been "
                    "reported."
                }
            ],
            ConsumerContact="ECHO toll-free at 800-432-3246 from 8 a.m. to 5 p.m. CT Monday "
            "through Friday, or online at www.echo-usa.com and click on Safety Recalls.",
        ),
    )
    content = imp.content()
    assert content.sold is not None
    assert (content.sold.start, content.sold.end) == (date(2023, 1, 1), date(2024, 6, 30))
    assert content.sale_channels == ["authorized ECHO dealers nationwide"]
    assert content.incidents_reported == 29 and content.injuries_reported == 0
    assert content.incidents.startswith("ECHO has received 29 reports")
    assert content.helpline_phone == "800-432-3246"
    assert content.helpline_url == "https://www.echo-usa.com"
    assert content.brand == "ECHO Inc."
    assert "helpline" not in missing(content) and "sale_period" not in missing(content)
    assert imp.provenance()["extracted"]["helpline_phone"][0]["field"] == "ConsumerContact"


def test_what_is_not_plain_is_left_out() -> None:
    assert [e.kind for e in extract_sale("Sold at Acme stores since spring", "f")] == [
        "sale_channels"
    ]  # "since spring" is no period
    assert [e.kind for e in extract_sale("Sold online from May 17 to May 25", "f")] == [
        "sale_channels"
    ]  # no year: not a period
    assert extract_helpline("Call the firm.", "f") == []
    assert [e.kind for e in extract_incidents("Several reports were received.", "f")] == [
        "incidents"
    ]


def test_every_fda_record_of_the_real_file_names_its_firm_and_distribution() -> None:
    parsed = []
    for raw in _records(OPENFDA):
        try:
            parsed.append(parse_record("openfda", raw).content())
        except RecordError:
            continue  # the two records without a recall number (test_import_parsers)
    assert len(parsed) == 70
    assert all(c.brand and c.sale_channels for c in parsed)
