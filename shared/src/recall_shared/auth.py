"""Credentials: seller/operator API keys and customer bearer JWTs.

API keys are 32 random bytes, shown once and stored only as an HMAC-SHA256 under a server-side
pepper (a fast hash is right here: the keys carry full entropy, unlike passwords). Customer tokens
come from the platform's identity provider and are verified with a configured HS256 secret or RS256
public key.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import jwt
from jwt.algorithms import RSAAlgorithm

from recall_shared.events import ID_MAX
from recall_shared.logging import note_principal
from recall_shared.validation import unsafe_text_reason

API_KEY_PREFIX = "rak_"


def generate_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


_API_KEY_SHAPE = re.compile(rf"^{API_KEY_PREFIX}[A-Za-z0-9_-]{{43}}$")  # 32 bytes, base64url


def has_api_key_shape(key: str) -> bool:
    """Whether ``key`` could be one :func:`generate_api_key` made."""
    return _API_KEY_SHAPE.match(key) is not None


def hash_api_key(key: str, pepper: str) -> str:
    return hmac.new(pepper.encode(), key.encode(), hashlib.sha256).hexdigest()


def key_display_prefix(key: str) -> str:
    """The first characters, safe to show in listings so a holder can tell keys apart."""
    return key[: len(API_KEY_PREFIX) + 6]


class InvalidToken(Exception):
    pass


def public_key_problem(pem: str) -> str | None:
    """Why ``pem`` cannot verify RS256 customer tokens, or None. Settings check it at start: a key
    that does not load would refuse every customer."""
    try:
        RSAAlgorithm(RSAAlgorithm.SHA256).prepare_key(pem)
    except jwt.PyJWTError as exc:
        return str(exc)
    return None


@dataclass(frozen=True)
class CustomerTokenVerifier:
    """Verifies customer JWTs: HS256 with ``secret``, or RS256 with ``public_key`` (PEM).

    A token is refused when it would live longer than ``max_lifetime_s`` (its ``exp`` more than that
    after its ``iat``, or after now): a leaked token must not open the account for years. Its
    subject must be a customer id the system can store (at most ``ID_MAX`` characters, no NUL), and
    a token longer than ``max_token_length`` is refused unread.

    Tokens that verified are remembered, keyed by the exact token string, with their subject and
    expiry: a page view's requests (and an RS256 signature check) then cost one dictionary lookup. A
    remembered token is still refused once it expires (its ``exp`` is checked on every use, with the
    same leeway); only successes are remembered, so a forged, malformed or expired token is
    verified, and refused, every time. At most ``cache_size`` tokens are kept (the oldest are
    dropped first); 0 turns the cache off."""

    secret: str | None = None
    public_key: str | None = None
    audience: str | None = None
    issuer: str | None = None
    leeway_s: int = 30
    cache_size: int = 10_000
    max_lifetime_s: int = 24 * 3600
    max_token_length: int = 8192
    _verified: dict[str, tuple[str, int]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def customer_id(self, token: str) -> str:
        sub = self._customer_id(token)
        note_principal("customer")  # the request's access log line names the kind of caller
        return sub

    def _customer_id(self, token: str) -> str:
        if len(token) > self.max_token_length:
            raise InvalidToken(f"invalid token: longer than {self.max_token_length} characters")
        hit = self._verified.get(token)
        if hit is not None:
            sub, exp = hit
            if exp > time.time() - self.leeway_s:  # PyJWT refuses exp <= now - leeway
                return sub
            self._verified.pop(
                token, None
            )  # expired: verify again, which refuses it with the usual error
        sub, exp = self._verify(token)
        if self.cache_size > 0:
            if len(self._verified) >= self.cache_size:
                self._verified.pop(next(iter(self._verified)), None)
            self._verified[token] = (sub, exp)
        return sub

    def _verify(self, token: str) -> tuple[str, int]:
        if self.public_key:
            key, algorithms = self.public_key, ["RS256"]
        elif self.secret:
            key, algorithms = self.secret, ["HS256"]
        else:
            raise InvalidToken("no token verification key configured")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway_s,
                options={"require": ["sub", "exp"], "verify_aud": self.audience is not None},
            )
        except jwt.ExpiredSignatureError as exc:
            raise InvalidToken("token expired") from exc
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"invalid token: {exc}") from exc
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub:
            raise InvalidToken("token has no subject")
        if len(sub) > ID_MAX:
            raise InvalidToken(f"token subject is longer than {ID_MAX} characters")
        if reason := unsafe_text_reason(sub):
            raise InvalidToken(f"token subject {reason}")
        exp = int(claims["exp"])  # PyJWT checked it is an integer
        self._check_lifetime(exp, claims.get("iat"))
        return sub, exp

    def _check_lifetime(self, exp: int, iat: float | None) -> None:
        limit = self.max_lifetime_s
        if exp - time.time() > limit + self.leeway_s:
            raise InvalidToken(f"token lifetime exceeds the maximum of {limit} s")
        if iat is not None and exp - int(iat) > limit:
            raise InvalidToken(f"token lifetime exceeds the maximum of {limit} s")


def issue_customer_token(
    customer_id: str,
    secret: str,
    *,
    ttl: timedelta = timedelta(hours=12),
    now: datetime | None = None,
    audience: str | None = None,
) -> str:
    """An HS256 token as the identity provider would issue it (development, demo and tests)."""
    now = now or datetime.now(UTC)
    claims: dict[str, object] = {
        "sub": customer_id,
        "iat": int(now.timestamp()),
        "exp": int((now + ttl).timestamp()),
    }
    if audience:
        claims["aud"] = audience
    return jwt.encode(claims, secret, algorithm="HS256")
