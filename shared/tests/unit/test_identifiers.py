"""Identifier normalisation on the forms real recalls use (product.md: "0-11110-91128-5", dropped
check digits, typos)."""

from __future__ import annotations

import pytest

from recall_shared.identifiers import check_digit, model_key, normalise_gtin


@pytest.mark.parametrize(
    ("raw", "gtin14"),
    [
        ("0-11110-91128-5", "00011110911285"),  # UPC-A with hyphens, as CPSC prints them
        ("011110911285", "00011110911285"),
        ("4006381333931", "04006381333931"),  # EAN-13
        ("4 006381 333931", "04006381333931"),
        ("04006381333931", "04006381333931"),  # already GTIN-14
        ("96385074", "00000096385074"),  # EAN-8
    ],
)
def test_valid_forms_normalise_to_gtin14(raw: str, gtin14: str) -> None:
    result = normalise_gtin(raw)
    assert (result.status, result.gtin14) == ("valid", gtin14)


def test_a_dropped_upc_check_digit_is_added_and_flagged() -> None:
    result = normalise_gtin("0-11110-91128")
    assert result.status == "check_digit_added"
    assert result.gtin14 == "00011110911285"
    assert "check digit 5 added" in result.message


def test_a_wrong_check_digit_is_refused_with_the_expected_one() -> None:
    result = normalise_gtin("0-11110-91128-4")
    assert result.status == "invalid" and result.gtin14 is None
    assert "expected 5" in result.message


@pytest.mark.parametrize("raw", ["ABC123", "12345", "123456789012345", ""])
def test_garbage_is_refused(raw: str) -> None:
    assert normalise_gtin(raw).status == "invalid"


def test_check_digit_matches_gs1_examples() -> None:
    assert check_digit("400638133393") == 1
    assert check_digit("01111091128") == 5


def test_model_keys_ignore_case_spaces_and_punctuation() -> None:
    assert model_key("AB-12 c") == model_key("ab12C") == "AB12C"
    assert model_key("K1/1700.2") == "K117002"
    assert model_key("  ") is None and model_key(None) is None
