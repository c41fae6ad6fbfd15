"""One real round trip to each service, so a user learns at once whether the stack outputs work."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, TopicMetadata
from opensearchpy.exceptions import (
    AuthenticationException,
    AuthorizationException,
    OpenSearchException,
    TransportError,
)
from opensearchpy.exceptions import ConnectionError as OSConnectionError
from opensearchpy.exceptions import SSLError as OSSSLError

from pipeline.config.settings import KafkaRole, Settings
from pipeline.errors import PipelineError, ServiceError, first_line
from pipeline.sinks.opensearch_client import host_and_port, opensearch_client


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
    return CheckResult(
        "Kafka",
        True,
        f"{settings.kafka.bootstrap}, topic {settings.kafka.events_topic} ({len(meta.partitions)} partitions)",
    )


def check_postgres(settings: Settings) -> CheckResult:
    try:
        with psycopg.connect(settings.postgres.conninfo("app"), connect_timeout=10) as conn:
            version = conn.execute("SHOW server_version").fetchone()
            tls = conn.info.pgconn.ssl_in_use
            where = f"{conn.info.host}:{conn.info.port}"
        return CheckResult(
            "PostgreSQL",
            True,
            f"{where} server {version[0] if version else '?'}, TLS {'verified (verify-full)' if tls else 'OFF'}",
        )
    except psycopg.Error as exc:
        return CheckResult("PostgreSQL", False, first_line(str(exc)))


def check_opensearch(settings: Settings) -> CheckResult:
    try:
        version = require_opensearch(settings)
    except PipelineError as exc:
        return CheckResult("OpenSearch", False, str(exc))
    host, port = host_and_port(settings.opensearch.uri)
    return CheckResult("OpenSearch", True, f"{host}:{port} version {version}, TLS verified")


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
        raise ServiceError(
            f"Kafka {settings.kafka.bootstrap} not reachable with the {role} certificate "
            f"within {timeout:.0f} s: {first_line(exc.args[0].str())}"
        ) from None
    if meta is None or meta.error is not None:
        raise ServiceError(f"Kafka topic {topic} not visible to the {role} principal at {settings.kafka.bootstrap}")
    return meta


def require_postgres(settings: Settings, *, timeout: int = 10) -> None:
    """Start-up gate: the application role must be able to log in, or a one-line ServiceError."""
    try:
        with psycopg.connect(settings.postgres.conninfo("app"), connect_timeout=timeout):
            pass
    except psycopg.Error as exc:
        raise ServiceError(f"PostgreSQL: {first_line(str(exc))}") from None


def require_opensearch(settings: Settings, *, timeout: float = 10.0) -> str:
    """Start-up gate: the pipeline's user must reach OpenSearch over verified TLS and log in.

    Returns the server version. Without it a wrong password or an untrusted certificate
    would only surface at the first bulk request, after PostgreSQL had been written.
    """
    host, port = host_and_port(settings.opensearch.uri)
    where = f"{host}:{port}"
    client = opensearch_client(settings.opensearch, "app", timeout=timeout)
    try:
        return str(client.info()["version"]["number"])
    except AuthenticationException:
        raise ServiceError(
            f"OpenSearch {where} refused the pipeline user's credentials (HTTP 401); "
            "check the user and password in the stack output opensearch_uri"
        ) from None
    except AuthorizationException:
        raise ServiceError(
            f"OpenSearch {where}: the pipeline user may not call GET / (HTTP 403); grant it cluster:monitor/main"
        ) from None
    except OSSSLError as exc:
        raise ServiceError(f"OpenSearch {where}: {describe_tls_failure(str(exc), host)}") from None
    except OSConnectionError as exc:
        raise ServiceError(
            f"OpenSearch {where} not reachable within {timeout:.0f} s: "
            f"{first_line(str(exc.info) if exc.info else str(exc.error))}"
        ) from None
    except TransportError as exc:
        raise ServiceError(
            f"OpenSearch {where} answered GET / with HTTP {exc.status_code} {first_line(str(exc.error))}"
        ) from None
    except (OpenSearchException, KeyError, TypeError):
        raise ServiceError(
            f"OpenSearch {where} did not answer GET / like OpenSearch; "
            "check the host and port in the stack output opensearch_uri"
        ) from None
    finally:
        client.close()


def describe_tls_failure(text: str, host: str) -> str:
    """Say which TLS problem it is: the CA, the name on the certificate, or not TLS at all."""
    if "Hostname mismatch" in text or "doesn't match" in text or "IP address mismatch" in text:
        return f"TLS certificate does not name {host}; use the host name the certificate was issued for"
    if "certificate has expired" in text:
        return "TLS certificate has expired"
    reason = re.search(r"certificate verify failed: ([^(]+)", text)
    if reason:
        return (
            f"TLS certificate not trusted ({reason.group(1).strip()}); "
            "the stack output opensearch_ca_cert must hold the CA that signed it"
        )
    return "TLS handshake failed (is that port HTTPS?)"


def require_consumer_services(settings: Settings) -> None:
    """Every service the consumer writes to or reads from, checked with the consumer's own credentials."""
    require_kafka(settings, "consumer")
    require_postgres(settings)
    require_opensearch(settings)


def check_all(settings: Settings) -> Iterator[CheckResult]:
    yield check_kafka(settings)
    yield check_postgres(settings)
    yield check_opensearch(settings)
