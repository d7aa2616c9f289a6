from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest

from recall_shared.auth import (
    API_KEY_PREFIX,
    CustomerTokenVerifier,
    InvalidToken,
    generate_api_key,
    hash_api_key,
    issue_customer_token,
    key_display_prefix,
)

SECRET = "x" * 40


def test_api_keys_are_random_and_prefixed() -> None:
    a, b = generate_api_key(), generate_api_key()
    assert a != b
    assert a.startswith(API_KEY_PREFIX) and len(a) > 40
    assert key_display_prefix(a) == a[:10] and key_display_prefix(a).startswith(API_KEY_PREFIX)


def test_api_key_hash_is_stable_and_pepper_dependent() -> None:
    key = generate_api_key()
    h = hash_api_key(key, "pepper-1")
    assert h == hash_api_key(key, "pepper-1")
    assert len(h) == 64 and key not in h
    assert h != hash_api_key(key, "pepper-2")
    assert h != hash_api_key(key + "x", "pepper-1")


def test_valid_token_gives_the_customer_id() -> None:
    token = issue_customer_token("cust-42", SECRET)
    assert CustomerTokenVerifier(secret=SECRET).customer_id(token) == "cust-42"


def test_expired_token_is_refused() -> None:
    token = issue_customer_token(
        "c", SECRET, ttl=timedelta(minutes=5), now=datetime.now(UTC) - timedelta(hours=1)
    )
    with pytest.raises(InvalidToken, match=r"^token expired$"):
        CustomerTokenVerifier(secret=SECRET).customer_id(token)


def test_expiry_within_leeway_is_accepted() -> None:
    token = issue_customer_token(
        "c", SECRET, ttl=timedelta(seconds=1), now=datetime.now(UTC) - timedelta(seconds=10)
    )
    assert CustomerTokenVerifier(secret=SECRET, leeway_s=30).customer_id(token) == "c"
    with pytest.raises(InvalidToken, match="expired"):
        CustomerTokenVerifier(secret=SECRET, leeway_s=0).customer_id(token)


def test_wrong_secret_is_refused() -> None:
    token = issue_customer_token("c", "y" * 40)
    with pytest.raises(InvalidToken, match="invalid token"):
        CustomerTokenVerifier(secret=SECRET).customer_id(token)


def test_garbage_and_alg_none_are_refused() -> None:
    verifier = CustomerTokenVerifier(secret=SECRET)
    with pytest.raises(InvalidToken):
        verifier.customer_id("not-a-jwt")
    unsigned = jwt.encode(
        {"sub": "c", "exp": int(datetime.now(UTC).timestamp()) + 60}, "", algorithm="none"
    )
    with pytest.raises(InvalidToken):
        verifier.customer_id(unsigned)


def test_missing_sub_is_refused() -> None:
    token = jwt.encode({"exp": int(datetime.now(UTC).timestamp()) + 60}, SECRET, algorithm="HS256")
    with pytest.raises(InvalidToken, match="sub"):
        CustomerTokenVerifier(secret=SECRET).customer_id(token)


def test_empty_or_non_string_sub_is_refused() -> None:
    exp = int(datetime.now(UTC).timestamp()) + 60
    verifier = CustomerTokenVerifier(secret=SECRET)
    with pytest.raises(InvalidToken):
        verifier.customer_id(jwt.encode({"sub": "", "exp": exp}, SECRET, algorithm="HS256"))


def test_missing_exp_is_refused() -> None:
    token = jwt.encode({"sub": "c"}, SECRET, algorithm="HS256")
    with pytest.raises(InvalidToken, match="exp"):
        CustomerTokenVerifier(secret=SECRET).customer_id(token)


def test_audience_is_checked_when_configured() -> None:
    token = issue_customer_token("c", SECRET, audience="recall-alerts")
    assert CustomerTokenVerifier(secret=SECRET, audience="recall-alerts").customer_id(token) == "c"
    with pytest.raises(InvalidToken):
        CustomerTokenVerifier(secret=SECRET, audience="someone-else").customer_id(token)


def test_no_key_configured_is_refused() -> None:
    with pytest.raises(InvalidToken, match="no token verification key"):
        CustomerTokenVerifier().customer_id(issue_customer_token("c", SECRET))
