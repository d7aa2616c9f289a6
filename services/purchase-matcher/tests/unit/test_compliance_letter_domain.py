"""Letters of Compliance, free of I/O: when a seller's corrected scope (stock made after a date, of
new lots, with serials in given ranges, best before a later day) takes its listing out of a
recall."""

from __future__ import annotations

from datetime import UTC, date, datetime

from purchase_matcher.domain import (
    CorrectedScope,
    ListingFacts,
    cleared_offers,
    letter_clears,
    serials_outside,
)
from recall_shared import events as ev

NOW = datetime(2026, 3, 1, tzinfo=UTC)
KETTLE = ListingFacts("p-1", None, (), (), ("s-1", "s-2"))


def made_after(day: date) -> CorrectedScope:
    return CorrectedScope("loc-1", day, ())


def of_lots(*lots: str) -> CorrectedScope:
    return CorrectedScope("loc-1", None, lots)


def rule(**kw: object) -> ev.ScopeRule:
    return ev.ScopeRule(product_ids=["p-1"], **kw)


def made_until(day: date) -> ev.ScopeRule:
    return rule(manufactured=ev.DateWindow(start=date(2025, 1, 1), end=day))


def lots(*values: str) -> ev.ScopeRule:
    return rule(lots=ev.CodeRule(values=list(values)))


def test_stock_made_after_the_window_ends_is_cleared() -> None:
    rules = [made_until(date(2025, 6, 30))]
    assert letter_clears(rules, KETTLE, "s-1", made_after(date(2025, 6, 30)), NOW)
    assert letter_clears(rules, KETTLE, "s-1", made_after(date(2025, 9, 1)), NOW)


def test_stock_made_after_a_day_inside_the_window_is_still_covered() -> None:
    rules = [made_until(date(2025, 6, 30))]
    assert not letter_clears(rules, KETTLE, "s-1", made_after(date(2025, 6, 29)), NOW)


def test_an_open_ended_window_covers_everything_made_later() -> None:
    rules = [rule(manufactured=ev.DateWindow(start=date(2025, 1, 1)))]
    assert not letter_clears(rules, KETTLE, "s-1", made_after(date(2026, 1, 1)), NOW)


def test_new_lots_outside_the_recalled_lots_are_cleared_and_one_inside_is_not() -> None:
    rules = [lots("L100", "L101")]
    assert letter_clears(rules, KETTLE, "s-1", of_lots("L200", "L201"), NOW)
    assert not letter_clears(rules, KETTLE, "s-1", of_lots("L200", "L101"), NOW)


def test_a_rule_without_a_lot_or_date_constraint_covers_any_stock() -> None:
    assert not letter_clears([rule()], KETTLE, "s-1", of_lots("L200"), NOW)
    assert not letter_clears([rule()], KETTLE, "s-1", made_after(date(2030, 1, 1)), NOW)


def test_every_rule_reaching_the_listing_must_leave_the_stock_out() -> None:
    by_lots, by_date = lots("L100"), made_until(date(2025, 6, 30))
    # New lots, but the date rule still covers them (nothing says when they were made).
    assert not letter_clears([by_lots, by_date], KETTLE, "s-1", of_lots("L200"), NOW)
    both = CorrectedScope("loc-1", date(2025, 7, 1), ("L200",))
    assert letter_clears([by_lots, by_date], KETTLE, "s-1", both, NOW)
    # A rule naming another product does not matter.
    other = ev.ScopeRule(product_ids=["p-9"])
    assert letter_clears([by_lots, other], KETTLE, "s-1", of_lots("L200"), NOW)


def test_cleared_offers_are_the_letter_sellers_listings_only() -> None:
    recall = ev.RecallSnapshot(
        recall_id="rc-1",
        version=1,
        seller_id=None,
        content=ev.RecallContent(
            title="T", hazard="H", severity="high", stop_using="S", remedies=[]
        ),
        rules=[lots("L100")],
        published_at=NOW,
    )
    letters = {
        ("p-1", "s-1"): of_lots("L200"),
        ("p-1", "s-9"): of_lots("L200"),  # a seller that does not list it
        ("p-2", "s-1"): of_lots("L200"),  # a listing not in question
    }
    assert cleared_offers(recall, [KETTLE], letters, NOW) == {("p-1", "s-1"): "loc-1"}


def of_serials(*ranges: tuple[str, str]) -> CorrectedScope:
    return CorrectedScope("loc-1", None, (), ranges)


def serials(**kw: object) -> ev.ScopeRule:
    return rule(serials=ev.CodeRule(**kw))


def test_serial_ranges_outside_the_recalled_serials_are_cleared() -> None:
    recalled = serials(ranges=[ev.CodeRange(first="SN1000", last="SN1999")])
    assert letter_clears([recalled], KETTLE, "s-1", of_serials(("SN2000", "SN2999")), NOW)
    assert letter_clears([recalled], KETTLE, "s-1", of_serials(("SN0001", "SN0999")), NOW)
    # Overlapping at one end, or wrapping the recalled range whole: still covered.
    assert not letter_clears([recalled], KETTLE, "s-1", of_serials(("SN1999", "SN2999")), NOW)
    assert not letter_clears([recalled], KETTLE, "s-1", of_serials(("SN0001", "SN9999")), NOW)
    # One range of several inside is enough to keep the stop.
    both = of_serials(("SN2000", "SN2999"), ("SN1500", "SN1600"))
    assert not letter_clears([recalled], KETTLE, "s-1", both, NOW)


def test_recalled_serial_values_and_prefixes_against_a_range() -> None:
    values = ev.CodeRule(values=["120", "450"], collation="numeric")
    assert serials_outside(values, [("500", "900")])
    assert not serials_outside(values, [("400", "900")])  # 450 is in it
    # A prefix can meet any range (codes of any length start with it): never known outside.
    assert not serials_outside(ev.CodeRule(prefixes=["12J"]), [("13A000", "13A999")])
    assert not serials_outside(values, [])  # a letter saying nothing of serials


def test_stock_best_before_a_day_after_the_recalled_window_is_cleared() -> None:
    recalled = rule(best_before=ev.DateWindow(start=date(2026, 1, 1), end=date(2026, 3, 31)))
    later = CorrectedScope("loc-1", None, (), (), date(2026, 3, 31))
    assert letter_clears([recalled], KETTLE, "s-1", later, NOW)
    inside = CorrectedScope("loc-1", None, (), (), date(2026, 3, 30))
    assert not letter_clears([recalled], KETTLE, "s-1", inside, NOW)
    # A letter by best-before does not clear a rule by manufacture date.
    assert not letter_clears([made_until(date(2025, 6, 30))], KETTLE, "s-1", later, NOW)
