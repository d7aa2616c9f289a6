"""The regulator watcher's conditional requests, free of I/O: which request a validator belongs
to, and the headers a request carries from what it was answered with last."""

from __future__ import annotations

import httpx

from recall_intake.regulator_watcher import conditional_headers, request_key, validators_of


def test_a_validator_belongs_to_its_url_and_query_whatever_the_order() -> None:
    url = "https://api.fda.gov/food/enforcement.json"
    a = request_key(url, {"skip": "0", "limit": "100"})
    assert a == request_key(url, {"limit": "100", "skip": "0"})
    assert a != request_key(url, {"limit": "100", "skip": "100"})


def test_the_headers_come_from_the_last_answer_as_the_server_spelled_them() -> None:
    assert conditional_headers(None) == {}
    assert conditional_headers({"following": 1}) == {}
    known = {"etag": 'W/"abc"', "last_modified": "Tue, 01 Dec 2026 00:00:00 GMT"}
    assert conditional_headers(known) == {
        "If-None-Match": 'W/"abc"',
        "If-Modified-Since": "Tue, 01 Dec 2026 00:00:00 GMT",
    }
    response = httpx.Response(200, headers={"ETag": '"x1"'})
    assert validators_of(response) == {"etag": '"x1"'}
