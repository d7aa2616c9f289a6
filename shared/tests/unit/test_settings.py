from __future__ import annotations

import pytest
from pydantic import ValidationError
from pydantic_settings import SettingsConfigDict

from recall_shared.settings import INSECURE_DEFAULT, ServiceSettings

STRONG = "s" * 32


class PrefixedSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="UNITSVC_", extra="ignore", frozen=True)

    service_name: str = "unit-svc"
    database_url: str = "postgresql+asyncpg://u:p@127.0.0.1/db"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in (
        "KAFKA_BOOTSTRAP_SERVERS",
        "RECALL_ALERTS_TOPIC_PREFIX",
        "RECALL_ALERTS_ENV",
        "RECALL_ALERTS_JWT_SECRET",
        "RECALL_ALERTS_API_KEY_PEPPER",
        "UNITSVC_KAFKA_BOOTSTRAP_SERVERS",
        "UNITSVC_TOPIC_PREFIX",
        "UNITSVC_ENVIRONMENT",
        "UNITSVC_JWT_SECRET",
        "UNITSVC_API_KEY_PEPPER",
        "RECALL_ALERTS_TOPIC_REPLICATION_FACTOR",
        "RECALL_ALERTS_TOPIC_MIN_INSYNC_REPLICAS",
    ):
        monkeypatch.delenv(var, raising=False)


def test_unprefixed_system_wide_variables_are_the_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka-shared:9092")
    monkeypatch.setenv("RECALL_ALERTS_TOPIC_PREFIX", "tenant1.")
    s = PrefixedSettings()
    assert s.kafka_bootstrap_servers == "kafka-shared:9092"
    assert s.topic_prefix == "tenant1."
    assert s.consumer_group_prefix == "tenant1.unit-svc"


def test_prefixed_variable_wins_over_the_system_wide_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka-shared:9092")
    monkeypatch.setenv("UNITSVC_KAFKA_BOOTSTRAP_SERVERS", "kafka-own:9092")
    assert PrefixedSettings().kafka_bootstrap_servers == "kafka-own:9092"


def test_explicit_argument_wins_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka-shared:9092")
    assert PrefixedSettings(kafka_bootstrap_servers="given:1").kafka_bootstrap_servers == "given:1"


def test_defaults_without_environment() -> None:
    s = PrefixedSettings()
    assert s.kafka_bootstrap_servers == "127.0.0.1:9092"
    assert s.environment == "development"
    assert s.topic_prefix == ""


def test_production_refuses_default_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError, match="jwt_secret, api_key_pepper"):
        PrefixedSettings(environment="production")
    monkeypatch.setenv("RECALL_ALERTS_ENV", "production")  # the system-wide switch too
    with pytest.raises(ValidationError, match="jwt_secret"):
        PrefixedSettings(api_key_pepper=STRONG)


def test_production_refuses_short_secrets() -> None:
    with pytest.raises(ValidationError, match="api_key_pepper"):
        PrefixedSettings(environment="production", jwt_secret=STRONG, api_key_pepper="short")


def test_production_accepts_strong_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECALL_ALERTS_JWT_SECRET", "j" * 40)
    s = PrefixedSettings(environment="production", api_key_pepper=STRONG)
    assert s.jwt_secret == "j" * 40 and s.api_key_pepper == STRONG


def test_development_accepts_default_secrets() -> None:
    s = PrefixedSettings(environment="development")
    assert s.jwt_secret == INSECURE_DEFAULT and s.api_key_pepper == INSECURE_DEFAULT


def test_settings_are_frozen_and_validated() -> None:
    s = PrefixedSettings()
    with pytest.raises(ValidationError):
        s.topic_prefix = "x"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        PrefixedSettings(consumer_max_attempts=0)
    with pytest.raises(ValidationError):
        PrefixedSettings(environment="staging")


def test_test_environment_refuses_default_secrets_too() -> None:
    with pytest.raises(ValidationError, match="outside development"):
        PrefixedSettings(environment="test")


def test_topic_replication_comes_from_the_system_wide_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert (
        PrefixedSettings().topic_replication_factor,
        PrefixedSettings().topic_min_insync_replicas,
    ) == (1, 1)
    monkeypatch.setenv("RECALL_ALERTS_TOPIC_REPLICATION_FACTOR", "3")
    monkeypatch.setenv("RECALL_ALERTS_TOPIC_MIN_INSYNC_REPLICAS", "2")
    s = PrefixedSettings()
    assert (s.topic_replication_factor, s.topic_min_insync_replicas) == (3, 2)


def test_more_in_sync_replicas_than_replicas_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECALL_ALERTS_TOPIC_REPLICATION_FACTOR", "1")
    monkeypatch.setenv("RECALL_ALERTS_TOPIC_MIN_INSYNC_REPLICAS", "2")
    with pytest.raises(ValidationError, match="topic_min_insync_replicas"):
        PrefixedSettings()
