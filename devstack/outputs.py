"""The local stack's connection details, written in the stack-outputs contract's shape.

The file is what ``pulumi stack output --json --show-secrets`` prints for an Aiven
stack: one JSON object, output name to value, every name of the contract present.
"""

from __future__ import annotations

import json
from pathlib import Path

from devstack import certs, kafka, opensearch, postgres
from devstack.layout import Layout
from devstack.secrets_store import write_private
from pipeline.contract import names
from pipeline.contract.outputs import Output


def build(layout: Layout, ca: certs.CertPair) -> dict[str, str]:
    clients = kafka.client_pairs(layout, ca)
    admin, producer, consumer = (
        clients[names.ADMIN_PRINCIPAL],
        clients[names.PRODUCER_PRINCIPAL],
        clients[names.CONSUMER_PRINCIPAL],
    )
    ca_pem = ca.cert_pem()
    values: dict[Output, str] = {
        Output.KAFKA_BOOTSTRAP: f"{kafka.HOST}:{layout.kafka_port}",
        Output.KAFKA_CA_CERT: ca_pem,
        Output.KAFKA_ADMIN_CERT: admin.cert_pem(),
        Output.KAFKA_ADMIN_KEY: admin.key_pem(),
        Output.KAFKA_PRODUCER_CERT: producer.cert_pem(),
        Output.KAFKA_PRODUCER_KEY: producer.key_pem(),
        Output.KAFKA_CONSUMER_CERT: consumer.cert_pem(),
        Output.KAFKA_CONSUMER_KEY: consumer.key_pem(),
        Output.KAFKA_EVENTS_TOPIC: names.EVENTS_TOPIC,
        Output.KAFKA_DEAD_LETTER_TOPIC: names.DEAD_LETTER_TOPIC,
        Output.KAFKA_CONSUMER_GROUP: names.CONSUMER_GROUP,
        Output.POSTGRES_APP_URI: postgres.uri(layout, names.APP_ROLE),
        Output.POSTGRES_ADMIN_URI: postgres.uri(layout, postgres.ADMIN_USER),
        Output.POSTGRES_CA_CERT: ca_pem,
        # Debian's PostgreSQL has no TimescaleDB: the plain-table path is the one run here.
        Output.POSTGRES_TIMESCALEDB: "false",
        Output.OPENSEARCH_URI: opensearch.pipeline_uri(layout),
        Output.OPENSEARCH_ADMIN_URI: opensearch.admin_uri(layout),
        Output.OPENSEARCH_CA_CERT: ca_pem,
        # The registries this stack installs from carry no OpenSearch Dashboards build.
        Output.OPENSEARCH_DASHBOARDS_URI: "",
    }
    return {name.value: values[name] for name in Output}


def write(layout: Layout, ca: certs.CertPair) -> Path:
    write_private(layout.outputs_file, json.dumps(build(layout, ca), indent=2) + "\n")
    return layout.outputs_file
