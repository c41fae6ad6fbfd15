"""The clickstream platform on Aiven as one Pulumi component.

One ``ComponentResource`` owns every Aiven resource, so ``pulumi stack`` shows a single
tree, the children share one parent for options and naming, and a second stack (another
name prefix) can live in the same Aiven project. The component's only product is
:attr:`ClickstreamPlatform.stack_outputs`: one value per name in the outputs contract
(``pipeline.config.outputs``), with every secret member wrapped in ``Output.secret``.

Access is least privilege by construction: the producer may only write the events
topic; the consumer may only read it and write the dead-letter topic; the OpenSearch
pipeline user may only touch the pipeline indices; the PostgreSQL application user is
not the admin. Admin credentials are exported separately, for migrations and index
templates only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aiven as aiven

from infra.config import PlatformConfig
from infra.uris import first, host_port, https_uri, postgres_uri, with_database
from pipeline.config.outputs import Output
from pipeline.sinks.opensearch.templates import DEFAULT_PREFIX, IndexNames

#: The pipeline's OpenSearch indices (see the architecture's "Names other parts depend on").
PIPELINE_INDEX_PATTERNS: tuple[str, ...] = IndexNames(DEFAULT_PREFIX).access_patterns
POSTGRES_DATABASE = "clickstream"
POSTGRES_APP_USER = "clickstream_app"
KAFKA_PRODUCER_USER = "clickstream-producer"
KAFKA_CONSUMER_USER = "clickstream-consumer"
OPENSEARCH_PIPELINE_USER = "clickstream-pipeline"
#: TimescaleDB's own default; set explicitly so enabling the flag is visible in the service config.
TIMESCALEDB_BACKGROUND_WORKERS = 16


@dataclass(frozen=True)
class _Kafka:
    service: aiven.Kafka
    events_topic: aiven.KafkaTopic
    dead_letter_topic: aiven.KafkaTopic
    producer: aiven.KafkaUser
    consumer: aiven.KafkaUser


@dataclass(frozen=True)
class _Postgres:
    service: aiven.Pg
    database: aiven.PgDatabase
    app_user: aiven.PgUser


@dataclass(frozen=True)
class _OpenSearch:
    service: aiven.OpenSearch
    pipeline_user: aiven.OpensearchUser


def contract_outputs(values: Mapping[Output, pulumi.Input[Any]]) -> dict[Output, pulumi.Output[Any]]:
    """Return one Pulumi output per contract name, secret exactly where the contract says.

    Mocks (and some providers) do not mark credentials secret on their own, so secrecy is
    decided here from the contract, explicitly, rather than inherited. A name missing from
    ``values`` is a programming error and fails the deployment instead of silently not
    exporting it.
    """
    missing = [o.value for o in Output if o not in values]
    if missing:
        raise ValueError(f"stack outputs missing from the platform: {', '.join(missing)}")
    return {
        o: pulumi.Output.secret(values[o]) if o.secret else pulumi.Output.from_input(values[o])
        for o in Output
    }


class ClickstreamPlatform(pulumi.ComponentResource):
    """Kafka, PostgreSQL and OpenSearch on Aiven, wired for the clickstream pipeline."""

    stack_outputs: dict[Output, pulumi.Output[Any]]

    def __init__(self, name: str, config: PlatformConfig, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("clickstream:platform:ClickstreamPlatform", name, None, opts)
        self._name = name
        self._config = config
        project_ca = aiven.get_project_output(
            project=config.project, opts=pulumi.InvokeOutputOptions(parent=self)
        ).ca_cert
        kafka = self._kafka()
        postgres = self._postgres()
        opensearch = self._opensearch()
        self.stack_outputs = contract_outputs(_output_values(config, project_ca, kafka, postgres, opensearch))
        self.register_outputs({o.value: v for o, v in self.stack_outputs.items()})

    # Options -----------------------------------------------------------------

    def _child(self, depends_on: list[pulumi.Resource] | None = None) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, depends_on=depends_on)

    def _data(self) -> pulumi.ResourceOptions:
        """Options for resources whose deletion loses data (topics, the database).

        Pulumi-side protection follows the termination-protection flag: on for production
        stacks, off for dev stacks and tests so ``pulumi destroy`` can clean up.
        """
        return pulumi.ResourceOptions(parent=self, protect=self._config.termination_protection)

    def _res(self, suffix: str) -> str:
        return f"{self._name}-{suffix}"

    # Kafka -------------------------------------------------------------------

    def _kafka(self) -> _Kafka:
        cfg = self._config
        service = aiven.Kafka(
            self._res("kafka"),
            project=cfg.project,
            cloud_name=cfg.cloud_name,
            plan=cfg.kafka_plan,
            service_name=cfg.kafka_service_name,
            termination_protection=cfg.termination_protection,
            # Keep Aiven's avnadmin-admin-on-all-topics entry: the admin certificate is
            # exported for topic administration. Pipeline users get only the ACLs below.
            default_acl=True,
            kafka_user_config=aiven.KafkaKafkaUserConfigArgs(
                kafka_version=cfg.kafka_version,
                schema_registry=True,
                kafka_authentication_methods=aiven.KafkaKafkaUserConfigKafkaAuthenticationMethodsArgs(
                    certificate=True,
                    sasl=False,
                ),
            ),
            opts=self._child(),
        )
        events = self._topic("events-topic", service, cfg.events_topic, "Clickstream events, keyed by user_id")
        dead_letter = self._topic(
            "dead-letter-topic", service, cfg.dead_letter_topic, "Clickstream messages that failed validation"
        )
        producer = aiven.KafkaUser(
            self._res("kafka-producer"), project=cfg.project, service_name=service.service_name,
            username=KAFKA_PRODUCER_USER, opts=self._child(),
        )
        consumer = aiven.KafkaUser(
            self._res("kafka-consumer"), project=cfg.project, service_name=service.service_name,
            username=KAFKA_CONSUMER_USER, opts=self._child(),
        )
        self._acl("producer-write-events", service, producer, events, "write")
        self._acl("consumer-read-events", service, consumer, events, "read")
        self._acl("consumer-write-dead-letter", service, consumer, dead_letter, "write")
        return _Kafka(service, events, dead_letter, producer, consumer)

    def _topic(self, suffix: str, service: aiven.Kafka, topic_name: str, description: str) -> aiven.KafkaTopic:
        cfg = self._config
        return aiven.KafkaTopic(
            self._res(suffix),
            project=cfg.project,
            service_name=service.service_name,
            topic_name=topic_name,
            topic_description=description,
            partitions=cfg.topic_partitions,
            replication=cfg.topic_replication,
            config=aiven.KafkaTopicConfigArgs(
                cleanup_policy="delete",
                retention_ms=str(cfg.topic_retention_ms),
                min_insync_replicas=str(cfg.topic_min_insync_replicas),
            ),
            opts=self._data(),
        )

    def _acl(
        self, suffix: str, service: aiven.Kafka, user: aiven.KafkaUser, topic: aiven.KafkaTopic, permission: str
    ) -> aiven.KafkaAcl:
        return aiven.KafkaAcl(
            self._res(f"acl-{suffix}"),
            project=self._config.project,
            service_name=service.service_name,
            username=user.username,
            topic=topic.topic_name,
            permission=permission,
            opts=self._child(),
        )

    # PostgreSQL --------------------------------------------------------------

    def _postgres(self) -> _Postgres:
        cfg = self._config
        service = aiven.Pg(
            self._res("pg"),
            project=cfg.project,
            cloud_name=cfg.cloud_name,
            plan=cfg.postgres_plan,
            service_name=cfg.postgres_service_name,
            termination_protection=cfg.termination_protection,
            pg_user_config=aiven.PgPgUserConfigArgs(
                pg_version=cfg.postgres_version,
                timescaledb=(
                    aiven.PgPgUserConfigTimescaledbArgs(max_background_workers=TIMESCALEDB_BACKGROUND_WORKERS)
                    if cfg.timescaledb
                    else None
                ),
            ),
            opts=self._child(),
        )
        database = aiven.PgDatabase(
            self._res("pg-database"), project=cfg.project, service_name=service.service_name,
            database_name=POSTGRES_DATABASE, opts=self._data(),
        )
        app_user = aiven.PgUser(
            self._res("pg-app-user"), project=cfg.project, service_name=service.service_name,
            username=POSTGRES_APP_USER, opts=self._child(),
        )
        return _Postgres(service, database, app_user)

    # OpenSearch --------------------------------------------------------------

    def _opensearch(self) -> _OpenSearch:
        cfg = self._config
        service = aiven.OpenSearch(
            self._res("opensearch"),
            project=cfg.project,
            cloud_name=cfg.cloud_name,
            plan=cfg.opensearch_plan,
            service_name=cfg.opensearch_service_name,
            termination_protection=cfg.termination_protection,
            opensearch_user_config=aiven.OpenSearchOpensearchUserConfigArgs(
                opensearch_version=cfg.opensearch_version,
                opensearch_dashboards=aiven.OpenSearchOpensearchUserConfigOpensearchDashboardsArgs(enabled=True),
            ),
            opts=self._child(),
        )
        # Enforce ACLs before the pipeline user exists: Aiven may grant users that already
        # exist when access control is switched on full access. Extended ACLs make the index
        # rules apply to _bulk, which the sink uses.
        acl_config = aiven.OpenSearchAclConfig(
            self._res("opensearch-acl-config"), project=cfg.project, service_name=service.service_name,
            enabled=True, extended_acl=True, opts=self._child(),
        )
        user = aiven.OpensearchUser(
            self._res("opensearch-pipeline-user"), project=cfg.project, service_name=service.service_name,
            username=OPENSEARCH_PIPELINE_USER, opts=self._child(depends_on=[acl_config]),
        )
        # The rules edit one ACL document per service; create them one after another.
        previous: pulumi.Resource = acl_config
        for pattern in PIPELINE_INDEX_PATTERNS:
            previous = aiven.OpenSearchAclRule(
                self._res(f"opensearch-acl-{pattern.rstrip('*')}"),
                project=cfg.project,
                service_name=service.service_name,
                username=user.username,
                index=pattern,
                permission="readwrite",
                opts=self._child(depends_on=[previous]),
            )
        return _OpenSearch(service, user)


def _output_values(
    cfg: PlatformConfig,
    project_ca: pulumi.Output[str],
    kafka: _Kafka,
    postgres: _Postgres,
    opensearch: _OpenSearch,
) -> dict[Output, pulumi.Input[Any]]:
    """Map each contract name to its value; secrecy is applied afterwards by ``contract_outputs``."""
    kafka_admin = kafka.service.kafkas.apply(lambda blocks: first(blocks, "kafka"))
    pg = postgres.service
    os_service = opensearch.service
    return {
        Output.KAFKA_BOOTSTRAP: pulumi.Output.all(kafka.service.service_host, kafka.service.service_port).apply(
            lambda hp: host_port(hp[0], hp[1])
        ),
        Output.KAFKA_CA_CERT: project_ca,
        Output.KAFKA_ADMIN_CERT: kafka_admin.apply(lambda block: block.access_cert),
        Output.KAFKA_ADMIN_KEY: kafka_admin.apply(lambda block: block.access_key),
        Output.KAFKA_PRODUCER_CERT: kafka.producer.access_cert,
        Output.KAFKA_PRODUCER_KEY: kafka.producer.access_key,
        Output.KAFKA_CONSUMER_CERT: kafka.consumer.access_cert,
        Output.KAFKA_CONSUMER_KEY: kafka.consumer.access_key,
        Output.KAFKA_EVENTS_TOPIC: kafka.events_topic.topic_name,
        Output.KAFKA_DEAD_LETTER_TOPIC: kafka.dead_letter_topic.topic_name,
        Output.KAFKA_CONSUMER_GROUP: cfg.consumer_group,
        Output.POSTGRES_APP_URI: pulumi.Output.all(
            postgres.app_user.username, postgres.app_user.password, pg.service_host, pg.service_port,
            postgres.database.database_name,
        ).apply(lambda a: postgres_uri(a[0], a[1], a[2], a[3], a[4])),
        Output.POSTGRES_ADMIN_URI: pulumi.Output.all(pg.service_uri, postgres.database.database_name).apply(
            lambda a: with_database(a[0], a[1])
        ),
        Output.POSTGRES_CA_CERT: project_ca,
        Output.OPENSEARCH_URI: pulumi.Output.all(
            opensearch.pipeline_user.username, opensearch.pipeline_user.password,
            os_service.service_host, os_service.service_port,
        ).apply(lambda a: https_uri(a[0], a[1], a[2], a[3])),
        Output.OPENSEARCH_ADMIN_URI: os_service.service_uri,
        # Aiven's OpenSearch endpoint presents a browser-recognised certificate that the
        # system trust store already covers; the pipeline adds this CA to that store, so
        # exporting the project CA costs nothing and keeps verification on either way.
        Output.OPENSEARCH_CA_CERT: project_ca,
        Output.OPENSEARCH_DASHBOARDS_URI: os_service.opensearches.apply(
            lambda blocks: first(blocks, "opensearch").opensearch_dashboards_uri
        ),
    }
