"""The public pages' pure parts: ETag matching, JSON-LD that cannot leave its <script>, the feed."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from customer_api.public_view import PublicRecall, atom_feed, etag, json_ld, matches
from recall_shared import events as ev


def row(title: str = "Kettle") -> PublicRecall:
    snapshot = ev.RecallSnapshot(
        recall_id="5b3c1b9e-0000-4000-8000-000000000001",
        version=1,
        seller_id=None,
        published_at=datetime(2026, 11, 20, tzinfo=UTC),
        rules=[ev.ScopeRule(product_ids=["p"], gtins=["00012345678905", "04006381333931"])],
        content=ev.RecallContent(
            title=title, hazard="Burns.", severity="high", stop_using="Stop.", remedies=[]
        ),
    )
    return PublicRecall(
        snapshot.recall_id, 1, "active", snapshot, snapshot.published_at, closed_at=None
    )


def test_if_none_match_is_compared_weakly_and_in_lists() -> None:
    tag = etag("recall", "en", 1)
    assert tag != etag("recall", "de", 1) and tag == etag("recall", "en", 1)
    assert matches(tag, tag) and matches(tag.removeprefix("W/"), tag)
    assert matches(f'"other", {tag}', tag) and matches("*", tag)
    assert not matches(None, tag) and not matches('"other"', tag)


def test_json_ld_cannot_close_its_script_element() -> None:
    text = json_ld(row("</script><script>alert(1)</script>"), "https://shop.example")
    assert "</" not in text and "<" not in text
    document = json.loads(text)
    assert document["name"] == "</script><script>alert(1)</script>"
    assert document["about"]["gtin14"] == ["00012345678905", "04006381333931"]


def test_an_empty_feed_is_still_a_valid_atom_document() -> None:
    xml = atom_feed([], "https://shop.example", "de").decode()
    assert xml.startswith("<?xml") and 'xml:lang="de"' in xml and "<entry>" not in xml
    assert "<updated>1970-01-01T00:00:00+00:00</updated>" in xml
