"""The stack-outputs contract: the one list of names shared by the Pulumi program, the local stack and the pipeline.

The Pulumi program exports exactly these names, the local stack writes exactly these
names, and the pipeline reads exactly these names; a test holds each of them to it.
``secret`` marks every value that carries a credential, and every value the Aiven
provider itself returns as a secret (its ``additional_secret_outputs``: the Kafka users'
access certificates are among them), so the contract says what a real stack returns:
the Pulumi program wraps those in ``Output.secret`` and the pipeline never prints them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


@dataclass(frozen=True)
class _Spec:
    secret: bool
    description: str


class Output(str, Enum):
    """A stack output name. The value is the exact key in ``pulumi stack output --json``."""

    KAFKA_BOOTSTRAP = "kafka_bootstrap_servers"
    KAFKA_CA_CERT = "kafka_ca_cert"
    KAFKA_ADMIN_CERT = "kafka_admin_access_cert"
    KAFKA_ADMIN_KEY = "kafka_admin_access_key"
    KAFKA_PRODUCER_CERT = "kafka_producer_access_cert"
    KAFKA_PRODUCER_KEY = "kafka_producer_access_key"
    KAFKA_CONSUMER_CERT = "kafka_consumer_access_cert"
    KAFKA_CONSUMER_KEY = "kafka_consumer_access_key"
    KAFKA_EVENTS_TOPIC = "kafka_events_topic"
    KAFKA_DEAD_LETTER_TOPIC = "kafka_dead_letter_topic"
    KAFKA_CONSUMER_GROUP = "kafka_consumer_group"
    POSTGRES_APP_URI = "postgres_app_uri"
    POSTGRES_ADMIN_URI = "postgres_admin_uri"
    POSTGRES_CA_CERT = "postgres_ca_cert"
    POSTGRES_TIMESCALEDB = "postgres_timescaledb"
    OPENSEARCH_URI = "opensearch_uri"
    OPENSEARCH_ADMIN_URI = "opensearch_admin_uri"
    OPENSEARCH_CA_CERT = "opensearch_ca_cert"
    OPENSEARCH_DASHBOARDS_URI = "opensearch_dashboards_uri"

    @property
    def secret(self) -> bool:
        return _SPECS[self].secret

    @property
    def description(self) -> str:
        return _SPECS[self].description


_SPECS: dict[Output, _Spec] = {
    Output.KAFKA_BOOTSTRAP: _Spec(False, "Kafka bootstrap address, host:port (SSL listener)"),
    Output.KAFKA_CA_CERT: _Spec(False, "PEM CA that signs the Kafka broker certificate"),
    Output.KAFKA_ADMIN_CERT: _Spec(True, "PEM client certificate of the Kafka admin user"),
    Output.KAFKA_ADMIN_KEY: _Spec(True, "PEM private key of the Kafka admin user"),
    Output.KAFKA_PRODUCER_CERT: _Spec(True, "PEM client certificate of the producer user"),
    Output.KAFKA_PRODUCER_KEY: _Spec(True, "PEM private key of the producer user"),
    Output.KAFKA_CONSUMER_CERT: _Spec(True, "PEM client certificate of the consumer user"),
    Output.KAFKA_CONSUMER_KEY: _Spec(True, "PEM private key of the consumer user"),
    Output.KAFKA_EVENTS_TOPIC: _Spec(False, "Topic carrying clickstream events"),
    Output.KAFKA_DEAD_LETTER_TOPIC: _Spec(False, "Topic receiving invalid messages with a reason"),
    Output.KAFKA_CONSUMER_GROUP: _Spec(False, "Consumer group id of the pipeline consumer"),
    Output.POSTGRES_APP_URI: _Spec(True, "PostgreSQL URI of the least-privileged application role"),
    Output.POSTGRES_ADMIN_URI: _Spec(True, "PostgreSQL URI of the admin role, for migrations only"),
    Output.POSTGRES_CA_CERT: _Spec(False, "PEM CA that signs the PostgreSQL server certificate"),
    Output.POSTGRES_TIMESCALEDB: _Spec(
        False, "'true': `pipeline schema` creates TimescaleDB and makes events a hypertable; 'false': plain tables"
    ),
    Output.OPENSEARCH_URI: _Spec(True, "OpenSearch URI of the pipeline user (may carry credentials)"),
    Output.OPENSEARCH_ADMIN_URI: _Spec(True, "OpenSearch URI of the admin user, for index templates"),
    Output.OPENSEARCH_CA_CERT: _Spec(
        False, "PEM CA trusted for the OpenSearch HTTPS endpoint in addition to the system's trust store"
    ),
    Output.OPENSEARCH_DASHBOARDS_URI: _Spec(True, "OpenSearch Dashboards URI (may carry credentials)"),
}

ALL_OUTPUTS: tuple[Output, ...] = tuple(Output)
SECRET_OUTPUTS: frozenset[Output] = frozenset(o for o in Output if o.secret)
