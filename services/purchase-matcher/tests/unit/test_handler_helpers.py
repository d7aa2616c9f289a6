"""Pure helpers of the matcher's handlers: deterministic outbox event ids and GTIN normalisation."""

from __future__ import annotations

import pytest

from purchase_matcher.handlers import gtin14, sale_event_id


def test_sale_event_id_is_deterministic_distinct_and_fits_the_outbox() -> None:
    long_recall, long_line = "r" * 64, "l" * 100  # the longest ids the matcher's tables accept
    assert sale_event_id("rc-1", "l-1") == sale_event_id("rc-1", "l-1")
    assert (
        len(
            {
                sale_event_id("rc-1", "l-1"),
                sale_event_id("rc-1", "l-2"),
                sale_event_id("rc-2", "l-1"),
            }
        )
        == 3
    )
    assert sale_event_id("ab", "c") != sale_event_id("a", "bc")
    assert len(sale_event_id(long_recall, long_line)) <= 64
    assert sale_event_id("rc-1", "l-1").startswith("sale:")


def test_order_gtins_are_stored_as_gtin14_and_unreadable_ones_dropped() -> None:
    assert (
        gtin14("0-11110-91128-5")
        == gtin14("011110911285")
        == gtin14("00011110911285")
        == "00011110911285"
    )
    assert gtin14("4006381333931") == "04006381333931"
    assert gtin14(None) is None and gtin14("") is None
    assert gtin14("not a gtin") is None
    assert gtin14("011110911284") is None  # wrong check digit: refused, never guessed


# --------------------------------------------------------------------------- reading ahead


async def test_reading_ahead_hands_a_reader_failure_to_the_consumer_instead_of_hanging() -> None:
    import asyncio

    from purchase_matcher.handlers import _ahead

    closed = []

    async def failing():
        try:
            yield [1]
            yield [2]
            raise ConnectionResetError("reader lost its connection")
        finally:
            closed.append(True)

    got = []
    with pytest.raises(ConnectionResetError):
        async with _ahead(failing(), depth=1) as chunks:
            async with asyncio.timeout(5):  # a hang fails here, not in CI's timeout
                async for rows in chunks:
                    got.extend(rows)
    assert got == [1, 2] and closed == [True]


async def test_leaving_early_closes_the_reader() -> None:
    from purchase_matcher.handlers import _ahead

    closed = []

    async def endless():
        try:
            n = 0
            while True:
                n += 1
                yield [n]
        finally:
            closed.append(True)

    async with _ahead(endless(), depth=2) as chunks:
        async for rows in chunks:
            if rows == [3]:
                break
    assert closed == [True]
