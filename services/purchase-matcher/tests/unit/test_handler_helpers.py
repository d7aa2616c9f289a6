"""Pure helpers of the matcher's handlers: deterministic outbox event ids and GTIN normalisation."""

from __future__ import annotations

from purchase_matcher.handlers import gtin14, sale_event_id


def test_sale_event_id_is_deterministic_distinct_and_fits_the_outbox() -> None:
    long_recall, long_line = "r" * 64, "l" * 100  # the longest ids the matcher's tables accept
    assert sale_event_id("rc-1", "l-1") == sale_event_id("rc-1", "l-1")
    assert len({sale_event_id("rc-1", "l-1"), sale_event_id("rc-1", "l-2"), sale_event_id("rc-2", "l-1")}) == 3
    assert sale_event_id("ab", "c") != sale_event_id("a", "bc")
    assert len(sale_event_id(long_recall, long_line)) <= 64
    assert sale_event_id("rc-1", "l-1").startswith("sale:")


def test_order_gtins_are_stored_as_gtin14_and_unreadable_ones_dropped() -> None:
    assert gtin14("0-11110-91128-5") == gtin14("011110911285") == gtin14("00011110911285") == "00011110911285"
    assert gtin14("4006381333931") == "04006381333931"
    assert gtin14(None) is None and gtin14("") is None
    assert gtin14("not a gtin") is None
    assert gtin14("011110911284") is None  # wrong check digit: refused, never guessed
