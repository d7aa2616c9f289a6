"""Settings shared by every service (pydantic-settings).

Each service subclasses :class:`ServiceSettings` with its own ``env_prefix`` (``NOTIFIER_`` ...). A
few infrastructure addresses are the same for the whole system and may be given once, unprefixed:
``KAFKA_BOOTSTRAP_SERVERS``, ``RECALL_ALERTS_TOPIC_PREFIX``, ``RECALL_ALERTS_ENV``,
``RECALL_ALERTS_JWT_SECRET``, ``RECALL_ALERTS_API_KEY_PEPPER``, ``SMTP_HOST``, ``SMTP_PORT``,
``RECALL_ALERTS_TRACING``, ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``,
``RECALL_ALERTS_TOPIC_REPLICATION_FACTOR``, ``RECALL_ALERTS_TOPIC_MIN_INSYNC_REPLICAS``,
``KAFKA_CONSUMER_PROTOCOL``. A prefixed variable wins over the unprefixed one.
"""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from recall_shared.logging import parse_levels

Environment = Literal["development", "test", "production"]

# Fields that fall back to one system-wide, unprefixed variable.
_SYSTEM_WIDE = {
    "kafka_bootstrap_servers": "KAFKA_BOOTSTRAP_SERVERS",
    "topic_prefix": "RECALL_ALERTS_TOPIC_PREFIX",
    "environment": "RECALL_ALERTS_ENV",
    "jwt_secret": "RECALL_ALERTS_JWT_SECRET",
    "api_key_pepper": "RECALL_ALERTS_API_KEY_PEPPER",
    "smtp_host": "SMTP_HOST",
    "smtp_port": "SMTP_PORT",
    "tracing_enabled": "RECALL_ALERTS_TRACING",
    "otlp_traces_endpoint": "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "topic_replication_factor": "RECALL_ALERTS_TOPIC_REPLICATION_FACTOR",
    "topic_min_insync_replicas": "RECALL_ALERTS_TOPIC_MIN_INSYNC_REPLICAS",
    "kafka_consumer_protocol": "KAFKA_CONSUMER_PROTOCOL",
}

INSECURE_DEFAULT = "insecure-development-secret-change-me"


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    service_name: str
    environment: Environment = "development"
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    database_url: str
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    topic_prefix: str = Field(
        default="",
        description="Prepended to every topic name; isolates test runs or tenants on a cluster.",
    )
    # Topic replication (create-topics): the single local broker takes 1 and 1; a cluster of three
    # or more, 3 and 2, so a write (acks=all) is on two brokers and one broker may be lost.
    topic_replication_factor: int = Field(
        default=1, ge=1, description="Replicas of each partition of the topics create-topics makes."
    )
    topic_min_insync_replicas: int = Field(
        default=1,
        ge=1,
        description="In-sync replicas a write needs (min.insync.replicas of the topics made).",
    )
    log_level: str = "INFO"
    log_json: bool = True
    log_levels: str = Field(
        default="",
        description="Per-logger levels: recall_shared.events=WARNING,recall_shared.access=WARNING",
    )
    # Secrets. Defaults exist only so development works out of the box; refused elsewhere.
    jwt_secret: str = INSECURE_DEFAULT
    api_key_pepper: str = INSECURE_DEFAULT
    # Consumer behaviour.
    consumer_max_attempts: int = Field(default=5, ge=1)
    consumer_backoff_initial_s: float = Field(default=0.2, gt=0)
    consumer_backoff_max_s: float = Field(default=5.0, gt=0)
    consumer_max_poll_records: int = Field(default=500, ge=1)
    consumer_batch_max_records: int = Field(
        default=500, ge=1, description="Records of one partition applied in one transaction."
    )
    consumer_max_parallel_partitions: int = Field(
        default=4,
        ge=1,
        description="Partitions of one consumer applied at once (each holds a connection).",
    )
    consumer_wait_max_s: float = Field(
        default=30.0,
        gt=0,
        description="Longest pause between retries while infrastructure is down.",
    )
    consumer_revoke_timeout_s: float = Field(
        default=15.0, gt=0, description="How long a revoked partition may take to finish its batch."
    )
    # The consumer groups' rebalance protocol (docs/decisions/0013): classic (aiokafka, eager) or
    # consumer (KIP-848 through confluent-kafka: incremental, the broker assigns).
    kafka_consumer_protocol: Literal["classic", "consumer"] = Field(
        default="classic",
        description="Consumer group protocol: classic (eager rebalances) or consumer (KIP-848).",
    )
    dead_letter_scan_interval_s: float = Field(
        default=30.0, gt=0, description="How often pending dead letters are counted."
    )
    db_pool_size: int = Field(default=10, ge=1)
    db_max_overflow: int = Field(default=10, ge=0)
    outbox_batch_size: int = Field(default=1000, ge=1)
    inbox_retention_days: float = Field(
        default=30,
        gt=0,
        description="Applied event ids older than this are forgotten (repeats come in minutes).",
    )
    inbox_purge_interval_s: float = Field(default=3600, gt=0)
    outbox_fallback_poll_s: float = Field(
        default=2.0,
        gt=0,
        description="The relay wakes on NOTIFY; this poll only covers missed wake-ups.",
    )
    # Observability (recall_shared.metrics, recall_shared.telemetry).
    tracing_enabled: bool = Field(
        default=False, description="Record spans (recall_shared.telemetry); on if an endpoint is."
    )
    otlp_traces_endpoint: str = Field(
        default="",
        description="OTLP/HTTP traces endpoint (http://collector:4318/v1/traces); empty: none.",
    )
    trace_sample_ratio: float = Field(
        default=1.0, ge=0, le=1, description="Share of the traces started here that are kept."
    )
    metrics_refresh_interval_s: float = Field(
        default=15.0,
        ge=0,
        description="A scrape re-reads the gauges kept in the database at most this often.",
    )

    @model_validator(mode="before")
    @classmethod
    def _system_wide_fallbacks(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for field, var in _SYSTEM_WIDE.items():
                if field in cls.model_fields and field not in data and var in os.environ:
                    data[field] = os.environ[var]
        return data

    @model_validator(mode="after")
    def _check_log_levels(self) -> ServiceSettings:
        parse_levels(self.log_levels)  # a typo refused at start, naming the entry
        return self

    @model_validator(mode="after")
    def _refuse_default_secrets(self) -> ServiceSettings:
        # Only development runs on the well-known defaults; tests and production bring their own
        # secrets.
        if self.environment != "development":
            weak = [
                name
                for name in ("jwt_secret", "api_key_pepper")
                if getattr(self, name) == INSECURE_DEFAULT or len(getattr(self, name)) < 32
            ]
            if weak:
                raise ValueError(
                    f"{', '.join(weak)} must be set to a secret of at least 32 characters "
                    f"outside development (environment={self.environment})"
                )
        return self

    @model_validator(mode="after")
    def _replication_possible(self) -> ServiceSettings:
        if self.topic_min_insync_replicas > self.topic_replication_factor:
            raise ValueError(
                f"topic_min_insync_replicas ({self.topic_min_insync_replicas}) exceeds "
                f"topic_replication_factor ({self.topic_replication_factor}): no write could "
                "succeed"
            )
        return self

    @property
    def consumer_group_prefix(self) -> str:
        return f"{self.topic_prefix}{self.service_name}"
