"""One real round trip to each service, so a user learns at once whether the stack outputs work."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, TopicMetadata

from pipeline.config.settings import KafkaRole, Settings
from pipeline.errors import ServiceError
from pipeline.sinks.opensearch_client import connect_opensearch


@dataclass(frozen=True)
class CheckResult:
    service: str
    ok: bool
    detail: str


def check_kafka(settings: Settings) -> CheckResult:
    try:
        meta = require_kafka(settings, "consumer")
    except ServiceError as exc:
        return CheckResult("Kafka", False, str(exc))
    return CheckResult("Kafka", True, f"{settings.kafka.bootstrap}, topic {settings.kafka.events_topic} "
                                      f"({len(meta.partitions)} partitions)")


def check_postgres(settings: Settings) -> CheckResult:
    try:
        with psycopg.connect(settings.postgres.conninfo("app"), connect_timeout=10) as conn:
            version = conn.execute("SHOW server_version").fetchone()
            tls = conn.info.pgconn.ssl_in_use
            where = f"{conn.info.host}:{conn.info.port}"
        return CheckResult("PostgreSQL", True, f"{where} server {version[0] if version else '?'}, "
                                               f"TLS {'verified (verify-full)' if tls else 'OFF'}")
    except psycopg.Error as exc:
        return CheckResult("PostgreSQL", False, _first_line(str(exc)))


def check_opensearch(settings: Settings) -> CheckResult:
    try:
        client = connect_opensearch(settings.opensearch.uri)
        info = client.info()
        return CheckResult("OpenSearch", True, f"version {info['version']['number']}")
    except Exception as exc:  # the client raises many unrelated types; report any of them
        return CheckResult("OpenSearch", False, _first_line(type(exc).__name__ + ": " + str(exc)))


def require_kafka(settings: Settings, role: KafkaRole, *, timeout: float = 10.0) -> TopicMetadata:
    """Start-up gate: one bounded metadata round trip with ``role``'s certificate, or a one-line ServiceError.

    Without it an unreachable broker or a rejected certificate makes librdkafka retry
    (and log) forever instead of failing.
    """
    topic = settings.kafka.events_topic
    try:
        admin = AdminClient(settings.kafka.client_config(role) | {"log_level": 0})
        meta = admin.list_topics(topic=topic, timeout=timeout).topics.get(topic)
    except KafkaException as exc:
        raise ServiceError(f"Kafka {settings.kafka.bootstrap} not reachable with the {role} certificate "
                           f"within {timeout:.0f} s: {_first_line(exc.args[0].str())}") from None
    if meta is None or meta.error is not None:
        raise ServiceError(f"Kafka topic {topic} not visible to the {role} principal at {settings.kafka.bootstrap}")
    return meta


def require_postgres(settings: Settings, *, timeout: int = 10) -> None:
    """Start-up gate: the application role must be able to log in, or a one-line ServiceError."""
    try:
        with psycopg.connect(settings.postgres.conninfo("app"), connect_timeout=timeout):
            pass
    except psycopg.Error as exc:
        raise ServiceError(f"PostgreSQL: {_first_line(str(exc))}") from None


def check_all(settings: Settings) -> Iterator[CheckResult]:
    yield check_kafka(settings)
    yield check_postgres(settings)
    yield check_opensearch(settings)


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0][:200] if text.strip() else "unknown error"
