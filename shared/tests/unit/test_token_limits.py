"""Customer tokens have a ceiling: a maximum lifetime, a subject the system can store, a bounded
size."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from recall_shared.auth import CustomerTokenVerifier, InvalidToken, issue_customer_token
from recall_shared.events import ID_MAX

SECRET = "s" * 40
DAY = 24 * 3600


def _token(**claims: object) -> str:
    return jwt.encode({"sub": "cust-1", **claims}, SECRET, algorithm="HS256")


def _verifier(**kw: object) -> CustomerTokenVerifier:
    return CustomerTokenVerifier(secret=SECRET, **kw)  # type: ignore[arg-type]


def test_a_token_within_the_maximum_lifetime_is_accepted() -> None:
    token = issue_customer_token("cust-1", SECRET, ttl=timedelta(hours=12))
    assert _verifier(max_lifetime_s=DAY).customer_id(token) == "cust-1"


def test_a_token_issued_for_longer_than_the_maximum_is_refused() -> None:
    token = issue_customer_token("cust-1", SECRET, ttl=timedelta(days=2))
    with pytest.raises(InvalidToken, match="lifetime exceeds the maximum of 86400 s"):
        _verifier(max_lifetime_s=DAY).customer_id(token)
    assert _verifier(max_lifetime_s=3 * DAY).customer_id(token) == "cust-1"  # configurable


def test_exp_minus_iat_counts_even_when_little_of_it_remains() -> None:
    # Issued 47 hours ago for 48 hours: an hour left, but a token minted for two days all the same.
    now = datetime.now(UTC)
    token = issue_customer_token(
        "cust-1", SECRET, ttl=timedelta(hours=48), now=now - timedelta(hours=47)
    )
    with pytest.raises(InvalidToken, match="lifetime exceeds"):
        _verifier(max_lifetime_s=DAY).customer_id(token)


def test_without_iat_exp_far_from_now_is_refused() -> None:
    now = int(time.time())
    with pytest.raises(InvalidToken, match="lifetime exceeds"):
        _verifier(max_lifetime_s=DAY).customer_id(_token(exp=now + 2 * DAY))
    assert _verifier(max_lifetime_s=DAY).customer_id(_token(exp=now + 3600)) == "cust-1"


@pytest.mark.parametrize("exp", [10**30, 1e30, 2**63, 2**64 + 1])
def test_an_absurd_exp_is_refused_without_crashing(exp: float) -> None:
    with pytest.raises(InvalidToken, match="lifetime exceeds"):
        _verifier().customer_id(_token(exp=exp))
    with pytest.raises(InvalidToken, match="lifetime exceeds"):
        _verifier().customer_id(_token(exp=exp, iat=int(time.time())))


def test_an_absurd_iat_is_refused_without_crashing() -> None:
    exp = int(time.time()) + 60
    for iat in (10**30, -(10**30)):
        with pytest.raises(InvalidToken):
            _verifier().customer_id(_token(exp=exp, iat=iat))


def test_the_subject_must_be_a_customer_id_the_system_can_store() -> None:
    exp = int(time.time()) + 60
    assert _verifier().customer_id(_token(sub="c" * ID_MAX, exp=exp)) == "c" * ID_MAX
    with pytest.raises(InvalidToken, match=f"subject is longer than {ID_MAX} characters"):
        _verifier(max_token_length=200_000).customer_id(_token(sub="c" * 100_000, exp=exp))
    with pytest.raises(InvalidToken, match="subject must not contain the NUL character"):
        _verifier().customer_id(_token(sub="cust\u00001", exp=exp))


def test_an_over_long_token_is_refused_unread() -> None:
    token = _token(exp=int(time.time()) + 60, pad="x" * 10_000)
    with pytest.raises(InvalidToken, match="longer than 8192 characters"):
        _verifier().customer_id(token)
    assert _verifier(max_token_length=20_000).customer_id(token) == "cust-1"
