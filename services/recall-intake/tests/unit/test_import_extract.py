"""extract.py on the real strings of the regulator files in tests/data/regulators (quoted verbatim).

Sources (see tests/data/regulators/README.md):
- openfda_res_ucm308307_enforcement_2012-06.jsonl: FDA/openfda @
  2c152208aaa02323696d904e94a1d114e66247ec : openfda/res/tests/data/ucm308307.json
- gsa_recalls_api_cpsc_2013.json: peggybustamante/python-samples @
  a0e677398966b0837ce9a3335776706d87d15787 : data/cpsc_recalls.json
- canon-event_seeds_cpsc_and_eu_safetygate_2024-2026.json: shubhL-research/canon-event @
  7ea2ef6036b62e2b9f58ffa0eb437434161821d1 : data/seeds.json
"""

from __future__ import annotations

from recall_intake.importers import extract as x
from recall_shared import events as ev
from recall_shared.identifiers import check_digit


def _values(found: list[x.Extracted]) -> list:
    return [e.value for e in found]


# ------------------------------------------------------------------ GTINs


def test_printed_upc_a_from_an_fda_label_is_read_and_verifies() -> None:
    text = "***HAM AND TURKEY FOOTLONG*** 7 05432 00194 5***KEEP REFRIGERATED***"
    gtins, flags = x.extract_gtins(text, "product-description")
    assert _values(gtins) == ["00705432001945"]
    assert check_digit("0070543200194") == 5  # it verifies: nothing was repaired
    assert gtins[0].as_dict() == {
        "field": "product-description",
        "text": "7 05432 00194 5",
        "value": "00705432001945",
    }
    assert flags == []


def test_hyphenated_upc_and_truncated_ones_are_flagged_not_used() -> None:
    text = (
        "a) Private Selections Organic Baby Spinach, 5 oz plastic clamshell, UPC 0-11110-91128-5; "
        "b) Marketside Baby Spinach Organic, 10 oz plastic clamshell, UPC: 6-8113132900-2. Recall "
        "# F-1398-2012"
    )
    gtins, flags = x.extract_gtins(text, "product-description")
    assert _values(gtins) == ["00011110911285", "00681131329002"]
    assert gtins[0].text == "UPC 0-11110-91128-5"
    # "UPC 0543200156" (10 digits) cannot be a GTIN: flagged, never completed by guessing.
    gtins, flags = x.extract_gtins(
        "Total Weight 8.45 oz-wt. (239.56g)***UPC 0543200156. Recall # F-1338-2012", "d"
    )
    assert gtins == [] and len(flags) == 1
    assert flags[0].text == "UPC 0543200156" and "10 digits" in flags[0].reason


def test_wrong_check_digit_is_flagged_and_the_right_code_beside_it_used() -> None:
    # GSA 13292: the same trunk described twice, once with a mistyped 14-digit UPC.
    bad, bad_flags = x.extract_gtins(
        "Toys R Us Journey Girl Travel Trunk, UPC # 48970277965070 and model number 5F5F79E", "d"
    )
    good, _ = x.extract_gtins(
        "Toys R Us Journey Girl Travel Trunk, UPC # 4897027965070 and model number 5F5F79E", "d"
    )
    assert bad == [] and "does not verify" in bad_flags[0].reason
    assert _values(good) == ["04897027965070"]


def test_eleven_digit_upc_is_read_without_inventing_a_digit_when_it_verifies() -> None:
    # Smiling Hara tempeh (F-1384-2012): "UPC: 13964447019" verifies as a UPC-A whose leading zero
    # was dropped, so that reading is taken (normalise_gtin alone would have appended a check
    # digit).
    gtins, flags = x.extract_gtins(
        "Smiling Hara Handcrafted Unpasteurized Tempeh Traditional Soy, 12 oz., UPC: 13964447019",
        "d",
    )
    assert _values(gtins) == ["00013964447019"]
    assert flags[0].reason.startswith("leading_zero_restored")
    # Evergreen "UPC# 89076725873" does not verify as written: its dropped check digit is added, and
    # flagged.
    gtins, flags = x.extract_gtins(
        "Evergreen Farm Doen Jang (Soybean Paste). UPC# 89076725873. Recall # F-1343-2012", "d"
    )
    assert _values(gtins) == ["00890767258734"]
    assert flags[0].reason.startswith("check_digit_added")


def test_safety_gate_gtin_field_and_isbn() -> None:
    gtins, flags = x.extract_gtins("GTIN 737052268675", "gtin")
    assert _values(gtins) == ["00737052268675"] and flags == []
    gtins, _ = x.extract_gtins(
        'Children\'s Books titled "Count my Kisses, 1, 2, 3", ISBN: 978-0-316-13354-8', "d"
    )
    assert _values(gtins) == ["09780316133548"]


def test_lot_and_unit_numbers_are_not_mistaken_for_gtins() -> None:
    gtins, flags = x.extract_gtins("Units: 4040078731, 4040069241, 4040064828", "code-info")
    assert gtins == [] and flags == []


# ------------------------------------------------------------------ model numbers


def test_gsa_model_numbers_in_prose() -> None:
    text = (
        "Infinity Green Candelabra LED Bulbs, model numbers are UDC3CW in cool white, "
        "and UDC3WW in warm white"
    )
    models = x.extract_model_numbers(text, "descriptions[0]")
    assert _values(models) == ["UDC3CW", "UDC3WW"]
    assert models[0].text == "model numbers are UDC3CW in cool white, and UDC3WW"


def test_model_lists_items_and_what_is_not_a_model() -> None:
    assert _values(
        x.extract_model_numbers(
            "Dolan Designs Ceiling-Mounted Light Fixture, models 502-30, 522-09, 522-14, and "
            "5392-20",
            "d",
        )
    ) == ["502-30", "522-09", "522-14", "5392-20"]
    assert _values(
        x.extract_model_numbers(
            "Target Circo-brand Chloe and Conner Sitting Stools, Item numbers 249200218 (red), "
            "249200207 (white)",
            "d",
        )
    ) == ["249200218", "249200207"]
    assert _values(
        x.extract_model_numbers(
            "Crosman Semi-automatic Style Air Pistols, model numbers C21, C31 and 9-C31BRM with "
            "serial numbers",
            "d",
        )
    ) == ["C21", "C31", "9-C31BRM"]
    assert _values(
        x.extract_model_numbers("SDADI Kitchen Step Stools, models LT01 and LT05", "name")
    ) == ["LT01", "LT05"]
    # Not models: "2013 model year", words without digits, "models Honda XR/CRF 50".
    assert (
        x.extract_model_numbers(
            "Giant Bicycles 2013 model year Giant XTC, Contact SLR Advanced SL 29er 0", "d"
        )
        == []
    )
    assert (
        x.extract_model_numbers(
            "2012 and 2013 Honda FourTrax TRX500 Foreman ATV models FE and FM", "d"
        )
        == []
    )
    assert (
        x.extract_model_numbers(
            "for youth motorcycle models Honda XR/CRF 50, Kawasaki KDX/Suzuki JR 50", "d"
        )
        == []
    )


def test_model_field_values_too_generic_to_identify_a_product() -> None:
    model, flag = x.model_from_field("PB-5810H", "model")  # CPSC 24329, ECHO backpack blowers
    assert model is not None and model.value == "PB-5810H" and flag is None
    for generic in ("35mm", "10-cup", "8-Light", "CR2025", "Smalto", "392", "Year 2026 Teryx4 H2"):
        model, flag = x.model_from_field(generic, "model")
        assert model is None and flag is not None, generic
    model, _ = x.model_from_field("3973500298,", "model")  # a trailing comma as published
    assert model is not None and model.value == "3973500298"


# ------------------------------------------------------------------ lots, serials, dates


def test_fda_lot_range_and_expiry_window_of_one_scope() -> None:
    text = (
        "Expiration dates from 01/19/2012 through 05/02/2012 and lot number from 00112 "
        "through 10412"
    )
    lots, flags = x.extract_lots(text, "code-info")
    assert flags == []
    assert [lot.as_dict() for lot in lots] == [
        {
            "field": "code-info",
            "text": "lot number from 00112 through 10412",
            "value": {"ranges": [{"first": "00112", "last": "10412"}], "collation": "numeric"},
        }
    ]
    rule = ev.CodeRule.model_validate(x.merge_code_rules(lots))
    assert (
        rule.matches("00112")
        and rule.matches("4411")
        and rule.matches("10412")
        and not rule.matches("10413")
    )
    windows = x.extract_date_windows(text, "code-info")
    assert [w.as_dict() for w in windows] == [
        {
            "field": "code-info",
            "text": "Expiration dates from 01/19/2012 through 05/02/2012",
            "value": {"start": "2012-01-19", "end": "2012-05-02"},
        }
    ]


def test_lot_lists_with_expiry_per_group() -> None:
    text = (
        "Lot #: LF00478C, LF00479C, Exp 10/12; LF00551C, LF00552C, Exp 01/13; "
        "LF00687C, LF00688C, Exp 04/13"
    )
    lots, _ = x.extract_lots(text, "code-info")
    assert (x.merge_code_rules(lots) or {}).get("values") == [
        "LF00478C",
        "LF00479C",
        "LF00551C",
        "LF00552C",
        "LF00687C",
        "LF00688C",
    ]
    (expiry,) = x.extract_date_windows(text, "code-info")
    assert expiry.value == {
        "start": "2012-10-01",
        "end": "2013-04-30",
    }  # whole months, the span of the three


def test_lots_with_spaces_and_numbered_groups() -> None:
    lots, _ = x.extract_lots(
        "a) Lot TFRS 130B 1503 KT34, Best By 5-25-2012; Lot TFRS 130B 1803 KT34, Best By 5-25-2012",
        "c",
    )
    assert (x.merge_code_rules(lots) or {}).get("values") == [
        "TFRS 130B 1503 KT34",
        "TFRS 130B 1803 KT34",
    ]
    lots, _ = x.extract_lots(
        "1) Lot Number: 07110002 thru 07110009;2) Lot Number: 07110010 thru 07110016", "c"
    )
    assert [lot.value["ranges"] for lot in lots] == [
        [{"first": "07110002", "last": "07110009"}],
        [{"first": "07110010", "last": "07110016"}],
    ]


def test_a_not_exhaustive_lot_list_is_not_the_scope_but_the_manufacturing_window_is() -> None:
    text = (
        "1) All lots manufactured and distributed between December 15, 2010 and November 15, 2011 "
        "including but not limited to lots: 02031103, 09241101, 10251101"
    )
    lots, flags = x.extract_lots(text, "code-info")
    assert lots == [] and "not exhaustive" in flags[0].reason
    (made,) = x.extract_date_windows(text, "code-info")
    assert made.kind == "manufactured" and made.value == {
        "start": "2010-12-15",
        "end": "2011-11-15",
    }


def test_serial_ranges_of_uneven_width_and_prefixes() -> None:
    serials, _ = x.extract_serials(
        "Frigidaire Professional blenders, model FPJB56B7MS with a serial number between FFP 49 "
        "1203 0001 and FFP 49 1237 00974",
        "descriptions[0]",
    )
    value = serials[0].value
    assert value == {
        "ranges": [{"first": "FFP 49 1203 0001", "last": "FFP 49 1237 00974"}],
        "collation": "natural",
    }
    rule = ev.CodeRule.model_validate(value)
    assert (
        rule.matches("FFP 49 1237 00974")
        and rule.matches("FFP 49 1220 5")
        and not rule.matches("FFP 49 1238 0001")
    )
    serials, _ = x.extract_serials(
        "model numbers C21, C31 and 9-C31BRM with serial numbers beginning with 12J, 12K, "
        "12L, 12M, 13A, 13B or 13C",
        "d",
    )
    assert serials[0].value == {"prefixes": ["12J", "12K", "12L", "12M", "13A", "13B", "13C"]}
    assert serials[0].text == "serial numbers beginning with 12J, 12K, 12L, 12M, 13A, 13B or 13C"


def test_best_by_use_by_and_production_dates() -> None:
    (bb,) = x.extract_date_windows(
        "All tempeh product varieties and sizes with Best By dates between 7/11/12 and 10/25/12.",
        "c",
    )
    assert bb.kind == "best_before" and bb.value == {"start": "2012-07-11", "end": "2012-10-25"}
    (ub,) = x.extract_date_windows("Lot 0201111 (use by date 5/6/2011)", "c")
    assert ub.kind == "best_before" and ub.value == {"start": "2011-05-06", "end": "2011-05-06"}
    found = {
        w.kind: w.value
        for w in x.extract_date_windows(
            "Code 1742 Date produced 07 FEB 2012 Best Before 07 FEB 2014", "c"
        )
    }
    assert found == {
        "manufactured": {"start": "2012-02-07", "end": "2012-02-07"},
        "best_before": {"start": "2014-02-07", "end": "2014-02-07"},
    }
    # No year stated: nothing is made up.
    assert x.extract_date_windows("1) Best if Used By Date May 17 to May 25", "c") == []


def test_units_affected() -> None:
    plain = x.extract_units_affected("529,327 units", "product-quantity")
    assert plain is not None and plain.value == 529327
    summed = x.extract_units_affected(
        "198,648 units of Honey Walnut and 110,718 units of Hazelnut cream cheese", "q"
    )
    assert summed is not None and summed.value == 309366
    assert x.extract_units_affected("5,841 pounds", "q") is None
    assert x.extract_units_affected("4,324 Cases", "q") is None
