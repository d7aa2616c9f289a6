"""customer-api refuses to start on a token key that would refuse every customer."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import ValidationError

from customer_api.settings import Settings


def test_a_public_key_that_does_not_load_is_refused_naming_the_variable() -> None:
    with pytest.raises(ValidationError, match="CUSTOMER_API_JWT_PUBLIC_KEY is not an RS256 public"):
        Settings(jwt_public_key="-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----")


def test_a_real_public_key_is_accepted() -> None:
    pem = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    assert Settings(jwt_public_key=pem).jwt_public_key == pem
