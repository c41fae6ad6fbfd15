"""One real round trip to each service, so a user learns at once whether the stack outputs work."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from pipeline.config.settings import Settings
from pipeline.sinks.opensearch_client import connect_opensearch


@dataclass(frozen=True)
class CheckResult:
    service: str
    ok: bool
    detail: str


def check_kafka(settings: Settings) -> CheckResult:
    try:
        admin = AdminClient(settings.kafka.client_config("consumer") | {"log_level": 0})
        topics = admin.list_topics(topic=settings.kafka.events_topic, timeout=10).topics
        meta = topics.get(settings.kafka.events_topic)
        if meta is None or meta.error is not None:
            return CheckResult("Kafka", False, f"topic {settings.kafka.events_topic} not visible to the consumer")
        return CheckResult("Kafka", True, f"{settings.kafka.bootstrap}, topic {settings.kafka.events_topic} "
                                          f"({len(meta.partitions)} partitions)")
    except KafkaException as exc:
        return CheckResult("Kafka", False, f"{settings.kafka.bootstrap}: {exc.args[0].str()}")


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


def check_all(settings: Settings) -> Iterator[CheckResult]:
    yield check_kafka(settings)
    yield check_postgres(settings)
    yield check_opensearch(settings)


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0][:200] if text.strip() else "unknown error"
