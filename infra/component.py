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

``pulumi destroy`` removes everything in one run: every child is ``deleted_with`` its
service (deleting the service deletes what lives in it, so Pulumi skips those calls), and
where a child is deleted on its own, dependencies order it (the database goes before
the role that was granted privileges inside it). Only ``terminationProtection`` protects
anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aiven as aiven

from infra.config import PlatformConfig
from infra.uris import first, host_port, https_uri, postgres_uri, with_database
from pipeline.contract import names
from pipeline.contract.names import IndexNames
from pipeline.contract.outputs import Output

#: The pipeline's OpenSearch indices: what its user is granted on Aiven.
PIPELINE_INDEX_PATTERNS: tuple[str, ...] = IndexNames().access_patterns
#: Aiven's OpenSearch ACL permission of the pipeline user on its index patterns. ``write``
#: covers what the pipeline does (``_bulk``, creating an index matching the pattern, reading
#: its ``_mapping``) without ``read`` (``_search``, ``_mget``); no permission below
#: ``admin`` allows deleting an index, but ``write`` does allow deleting documents and
#: ``_delete_by_query``/``_update_by_query`` (https://aiven.io/docs/products/opensearch/concepts/users-access-controls).
OPENSEARCH_PIPELINE_PERMISSION = "write"


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
    return {o: pulumi.Output.secret(values[o]) if o.secret else pulumi.Output.from_input(values[o]) for o in Output}


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

    def _service(self) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self)

    def _child(
        self, service: pulumi.Resource, depends_on: list[pulumi.Resource] | None = None, *, data: bool = False
    ) -> pulumi.ResourceOptions:
        """Options of a resource that lives inside ``service``.

        ``data`` marks resources whose deletion loses data (topics, the database): Pulumi
        protects them exactly when the termination-protection flag is on.
        """
        return pulumi.ResourceOptions(
            parent=self,
            depends_on=depends_on,
            deleted_with=service,
            protect=self._config.termination_protection if data else None,
        )

    def _common(self) -> dict[str, Any]:
        """Arguments every service takes the same way: placement, maintenance, protection."""
        cfg = self._config
        return {
            "project": cfg.project,
            "cloud_name": cfg.cloud_name,
            "maintenance_window_dow": cfg.maintenance_dow,
            "maintenance_window_time": cfg.maintenance_time,
            "termination_protection": cfg.termination_protection,
        }

    def _tags(self) -> dict[str, str]:
        """Tags of every service: which Pulumi project and stack own it, and who to ask."""
        tags = {"pulumi-project": pulumi.get_project(), "pulumi-stack": pulumi.get_stack()}
        if self._config.owner:
            tags["owner"] = self._config.owner
        return tags

    def _res(self, suffix: str) -> str:
        return f"{self._name}-{suffix}"

    # Kafka -------------------------------------------------------------------

    def _kafka(self) -> _Kafka:
        cfg = self._config
        standard = cfg.kafka_flavor == "standard"
        service = aiven.Kafka(
            self._res("kafka"),
            **self._common(),
            plan=cfg.kafka_plan,
            service_name=cfg.kafka_service_name,
            tags=[aiven.KafkaTagArgs(key=k, value=v) for k, v in self._tags().items()],
            # Keep Aiven's avnadmin-admin-on-all-topics entry: the admin certificate is
            # exported for topic administration. Pipeline users get only the ACLs below.
            default_acl=True,
            kafka_user_config=aiven.KafkaKafkaUserConfigArgs(
                kafka_version=cfg.kafka_version,
                # Nothing in the pipeline uses a schema registry (the event contract is
                # enforced by the consumer); off, it costs no memory on small plans.
                schema_registry=False,
                kafka_authentication_methods=aiven.KafkaKafkaUserConfigKafkaAuthenticationMethodsArgs(
                    certificate=True,
                    sasl=False,
                ),
                ip_filter_strings=cfg.ip_filter,
                # Standard Kafka ("inkless" in the API) is chosen at creation and keeps
                # classic topics on tiered storage.
                inkless=aiven.KafkaKafkaUserConfigInklessArgs(enabled=True) if standard else None,
                tiered_storage=aiven.KafkaKafkaUserConfigTieredStorageArgs(enabled=True) if standard else None,
            ),
            opts=self._service(),
        )
        events = self._topic("events-topic", service, cfg.events_topic, "Clickstream events, keyed by user_id")
        dead_letter = self._topic(
            "dead-letter-topic", service, cfg.dead_letter_topic, "Clickstream messages that failed validation"
        )
        producer = aiven.KafkaUser(
            self._res("kafka-producer"),
            project=cfg.project,
            service_name=service.service_name,
            username=names.PRODUCER_PRINCIPAL,
            opts=self._child(service),
        )
        consumer = aiven.KafkaUser(
            self._res("kafka-consumer"),
            project=cfg.project,
            service_name=service.service_name,
            username=names.CONSUMER_PRINCIPAL,
            opts=self._child(service),
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
            opts=self._child(service, data=True),
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
            opts=self._child(service),
        )

    # PostgreSQL --------------------------------------------------------------

    def _postgres(self) -> _Postgres:
        cfg = self._config
        service = aiven.Pg(
            self._res("pg"),
            **self._common(),
            plan=cfg.postgres_plan,
            service_name=cfg.postgres_service_name,
            tags=[aiven.PgTagArgs(key=k, value=v) for k, v in self._tags().items()],
            # No TimescaleDB settings here: Aiven's defaults run it, and a user-config key
            # once set cannot be removed again. Whether to use it is the stack output
            # postgres_timescaledb, which `pipeline schema` honours.
            pg_user_config=aiven.PgPgUserConfigArgs(
                pg_version=cfg.postgres_version,
                ip_filter_strings=cfg.ip_filter,
                pg=aiven.PgPgUserConfigPgArgs(max_locks_per_transaction=names.MAX_LOCKS_PER_TRANSACTION),
            ),
            opts=self._service(),
        )
        app_user = aiven.PgUser(
            self._res("pg-app-user"),
            project=cfg.project,
            service_name=service.service_name,
            username=names.APP_ROLE,
            opts=self._child(service),
        )
        # Migrations grant the application role privileges inside the database, and
        # PostgreSQL refuses to drop a role that still holds some: the database depends on
        # the role so that Pulumi deletes the database first.
        database = aiven.PgDatabase(
            self._res("pg-database"),
            project=cfg.project,
            service_name=service.service_name,
            database_name=names.DATABASE,
            opts=self._child(service, [app_user], data=True),
        )
        return _Postgres(service, database, app_user)

    # OpenSearch --------------------------------------------------------------

    def _opensearch(self) -> _OpenSearch:
        cfg = self._config
        service = aiven.OpenSearch(
            self._res("opensearch"),
            **self._common(),
            plan=cfg.opensearch_plan,
            service_name=cfg.opensearch_service_name,
            tags=[aiven.OpenSearchTagArgs(key=k, value=v) for k, v in self._tags().items()],
            opensearch_user_config=aiven.OpenSearchOpensearchUserConfigArgs(
                opensearch_version=cfg.opensearch_version,
                opensearch_dashboards=aiven.OpenSearchOpensearchUserConfigOpensearchDashboardsArgs(enabled=True),
                ip_filter_strings=cfg.ip_filter,
            ),
            opts=self._service(),
        )
        # Enforce ACLs before the pipeline user exists: Aiven may grant users that already
        # exist when access control is switched on full access. Extended ACLs make the index
        # rules apply to _bulk, which the sink uses.
        acl_config = aiven.OpenSearchAclConfig(
            self._res("opensearch-acl-config"),
            project=cfg.project,
            service_name=service.service_name,
            enabled=True,
            extended_acl=True,
            opts=self._child(service),
        )
        user = aiven.OpensearchUser(
            self._res("opensearch-pipeline-user"),
            project=cfg.project,
            service_name=service.service_name,
            username=names.PIPELINE_USER,
            opts=self._child(service, [acl_config]),
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
                permission=OPENSEARCH_PIPELINE_PERMISSION,
                opts=self._child(service, [previous]),
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
            postgres.app_user.username,
            postgres.app_user.password,
            pg.service_host,
            pg.service_port,
            postgres.database.database_name,
        ).apply(lambda a: postgres_uri(a[0], a[1], a[2], a[3], a[4])),
        Output.POSTGRES_ADMIN_URI: pulumi.Output.all(pg.service_uri, postgres.database.database_name).apply(
            lambda a: with_database(a[0], a[1])
        ),
        Output.POSTGRES_CA_CERT: project_ca,
        Output.POSTGRES_TIMESCALEDB: "true" if cfg.timescaledb else "false",
        Output.OPENSEARCH_URI: pulumi.Output.all(
            opensearch.pipeline_user.username,
            opensearch.pipeline_user.password,
            os_service.service_host,
            os_service.service_port,
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
