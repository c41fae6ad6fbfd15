"""The whole Pulumi program, run as the CLI runs it, under mocks (no cloud, no CLI).

Each test inspects what the mock engine received: resource registrations and inputs, and
the stack outputs as serialized on the wire. Checks that could pass vacuously (an
``apply`` that never ran, a checker that never flags anything) are pinned by counters and
by negative tests on the checkers themselves.
"""

from __future__ import annotations

from collections import Counter
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pulumi
import pulumi_aiven as aiven
import pytest

from infra.component import PIPELINE_INDEX_PATTERNS, ClickstreamPlatform, contract_outputs
from infra.config import ConfigError, PlatformConfig
from pipeline.contract import names
from pipeline.contract.outputs import Output
from tests.infra.infra_harness import (
    KAFKA_PORT,
    OPENSEARCH_ADMIN_PASSWORD,
    OPENSEARCH_PIPELINE_PASSWORD,
    OPENSEARCH_PORT,
    PG_ADMIN_PASSWORD,
    PG_APP_PASSWORD,
    PG_PORT,
    PROJECT_CA,
    ProgramRun,
    ProgramRunner,
    Registered,
    config_from,
    pem,
    secret_wire,
    unwrap,
)

COMPONENT = "clickstream:platform:ClickstreamPlatform"
KAFKA = "aiven:index/kafka:Kafka"
TOPIC = "aiven:index/kafkaTopic:KafkaTopic"
KAFKA_USER = "aiven:index/kafkaUser:KafkaUser"
KAFKA_ACL = "aiven:index/kafkaAcl:KafkaAcl"
PG = "aiven:index/pg:Pg"
PG_DATABASE = "aiven:index/pgDatabase:PgDatabase"
PG_USER = "aiven:index/pgUser:PgUser"
OPENSEARCH = "aiven:index/openSearch:OpenSearch"
OS_USER = "aiven:index/opensearchUser:OpensearchUser"
OS_ACL_CONFIG = "aiven:index/openSearchAclConfig:OpenSearchAclConfig"
OS_ACL_RULE = "aiven:index/openSearchAclRule:OpenSearchAclRule"
SERVICES = (KAFKA, PG, OPENSEARCH)

EXPECTED_COUNTS = {
    COMPONENT: 1,
    KAFKA: 1,
    TOPIC: 2,
    KAFKA_USER: 2,
    KAFKA_ACL: 3,
    PG: 1,
    PG_DATABASE: 1,
    PG_USER: 1,
    OPENSEARCH: 1,
    OS_USER: 1,
    OS_ACL_CONFIG: 1,
    OS_ACL_RULE: 2,
}

# A stack where every key differs from its default.
CUSTOM_CONFIG = {
    "clickstream:project": "acme-analytics",
    "clickstream:cloudName": "aws-eu-west-1",
    "clickstream:namePrefix": "prod",
    "clickstream:owner": "data-platform",
    "clickstream:kafkaFlavor": "standard",
    "clickstream:kafkaPlan": "standard-offering-10",
    "clickstream:kafkaVersion": "4.2",
    "clickstream:postgresPlan": "business-8",
    "clickstream:postgresVersion": "16",
    "clickstream:opensearchPlan": "business-8",
    "clickstream:opensearchVersion": "3.8",
    "clickstream:topicPartitions": "24",
    "clickstream:topicReplication": "2",
    "clickstream:topicMinInsyncReplicas": "1",
    "clickstream:topicRetentionHours": "24",
    "clickstream:timescaledb": "false",
    "clickstream:allowedCidrs": "203.0.113.0/24, 2001:db8::/32",
    "clickstream:maintenanceDow": "wednesday",
    "clickstream:maintenanceTime": "22:30:00",
    "clickstream:terminationProtection": "true",
}


def expected_config(raw: dict[str, str]) -> PlatformConfig:
    """The config the program should have used, computed independently of the run."""
    return config_from(raw)


def acl_violations(acls: list[tuple[str, str, str]], cfg: PlatformConfig) -> list[str]:
    """Every way the (username, topic, permission) triples exceed least privilege."""
    allowed = {
        ("clickstream-producer", cfg.events_topic, "write"),
        ("clickstream-consumer", cfg.events_topic, "read"),
        ("clickstream-consumer", cfg.dead_letter_topic, "write"),
    }
    problems = [f"not allowed: {acl}" for acl in acls if acl not in allowed]
    problems += [f"missing: {acl}" for acl in sorted(allowed - set(acls))]
    return problems


def secret_violations(wire_outputs: dict[str, Any]) -> list[str]:
    """Contract names missing from the stack outputs, or whose secrecy differs from the contract's."""
    problems = [f"{o.value} not exported" for o in Output if o.value not in wire_outputs]
    for o in Output:
        if o.value in wire_outputs and unwrap(wire_outputs[o.value])[1] != o.secret:
            problems.append(f"{o.value} is {'not ' if o.secret else ''}secret")
    return problems


def only_resource(run: ProgramRun, token: str) -> Registered:
    (resource,) = run.of_type(token)
    return resource


def only(run: ProgramRun, token: str) -> dict[str, Any]:
    return only_resource(run, token).inputs


# Resources ------------------------------------------------------------------------------


def test_every_resource_type_and_count(dev_run: ProgramRun) -> None:
    assert Counter(r.type for r in dev_run.resources) == EXPECTED_COUNTS


def test_all_resources_are_children_of_the_component(dev_run: ProgramRun) -> None:
    (component,) = dev_run.of_type(COMPONENT)
    assert component.parent.endswith("::pulumi:pulumi:Stack::clickstream-dev")
    assert component.custom is False
    children = [r for r in dev_run.resources if r.type != COMPONENT]
    assert children and all(r.parent == component.urn and r.custom for r in children)
    assert {r.inputs.get("project") for r in children} == {"my-aiven-project"}


def test_project_ca_is_read_for_the_configured_project(dev_run: ProgramRun) -> None:
    assert [(c.token, c.args) for c in dev_run.calls] == [
        ("aiven:index/getProject:getProject", {"project": "my-aiven-project"})
    ]


@pytest.fixture(params=["dev", "custom"])
def config_run(
    request: pytest.FixtureRequest, run_program: ProgramRunner, dev_config: dict[str, str]
) -> tuple[PlatformConfig, ProgramRun]:
    """The dev stack's and a fully custom configuration, each with the run of the program it gives."""
    raw = dev_config if request.param == "dev" else CUSTOM_CONFIG
    return expected_config(raw), run_program(raw)


def test_services_follow_config(config_run: tuple[PlatformConfig, ProgramRun]) -> None:
    cfg, run = config_run
    assert {only(run, t)["cloudName"] for t in SERVICES} == {cfg.cloud_name}
    kafka, pg, opensearch = (only(run, t) for t in SERVICES)
    assert (kafka["plan"], kafka["serviceName"]) == (cfg.kafka_plan, cfg.kafka_service_name)
    assert kafka["kafkaUserConfig"]["kafkaVersion"] == cfg.kafka_version
    assert (pg["plan"], pg["serviceName"]) == (cfg.postgres_plan, cfg.postgres_service_name)
    assert pg["pgUserConfig"]["pgVersion"] == cfg.postgres_version
    assert "timescaledb" not in pg["pgUserConfig"]  # a user-config key once set cannot be removed
    assert pg["pgUserConfig"]["pg"] == {"maxLocksPerTransaction": names.MAX_LOCKS_PER_TRANSACTION}
    assert run.output(Output.POSTGRES_TIMESCALEDB.value) == ("true" if cfg.timescaledb else "false")
    assert (opensearch["plan"], opensearch["serviceName"]) == (cfg.opensearch_plan, cfg.opensearch_service_name)
    assert opensearch["opensearchUserConfig"]["opensearchVersion"] == cfg.opensearch_version
    standard = cfg.kafka_flavor == "standard"
    assert kafka["kafkaUserConfig"].get("inkless") == ({"enabled": True} if standard else None)
    assert kafka["kafkaUserConfig"].get("tieredStorage") == ({"enabled": True} if standard else None)
    tags = {"pulumi-project": "clickstream", "pulumi-stack": "dev"} | ({"owner": cfg.owner} if cfg.owner else {})
    for service, user_config in (
        (kafka, "kafkaUserConfig"),
        (pg, "pgUserConfig"),
        (opensearch, "opensearchUserConfig"),
    ):
        assert service["terminationProtection"] is cfg.termination_protection
        assert service[user_config]["ipFilterStrings"] == cfg.ip_filter
        assert (service["maintenanceWindowDow"], service["maintenanceWindowTime"]) == (
            cfg.maintenance_dow,
            cfg.maintenance_time,
        )
        assert {t["key"]: t["value"] for t in service["tags"]} == tags


def test_custom_config_really_differs_from_defaults() -> None:
    """Guards the test above: a custom config equal to the defaults would prove nothing."""
    custom, default = expected_config(CUSTOM_CONFIG), PlatformConfig(project="x")
    same = [f for f in PlatformConfig.__dataclass_fields__ if getattr(custom, f) == getattr(default, f)]
    assert same == []


def test_kafka_uses_client_certificates_and_no_schema_registry(dev_run: ProgramRun) -> None:
    user_config = only(dev_run, KAFKA)["kafkaUserConfig"]
    assert user_config["kafkaAuthenticationMethods"] == {"certificate": True, "sasl": False}
    assert user_config["schemaRegistry"] is False  # nothing uses it; it costs memory on small plans
    assert only(dev_run, KAFKA)["defaultAcl"] is True  # avnadmin keeps admin; the admin cert is exported


def test_topics_follow_config(config_run: tuple[PlatformConfig, ProgramRun]) -> None:
    cfg, run = config_run
    topics = {r.inputs["topicName"]: r for r in run.of_type(TOPIC)}
    assert set(topics) == {cfg.events_topic, cfg.dead_letter_topic}
    for topic in topics.values():
        assert topic.inputs["serviceName"] == cfg.kafka_service_name
        assert topic.inputs["partitions"] == cfg.topic_partitions  # arrives as a float; == compares value
        assert topic.inputs["replication"] == cfg.topic_replication
        assert topic.inputs["config"]["retentionMs"] == str(cfg.topic_retention_ms)
        assert topic.inputs["config"]["minInsyncReplicas"] == str(cfg.topic_min_insync_replicas)
        assert topic.protect is cfg.termination_protection  # dev stacks stay destroyable
    (database,) = run.of_type(PG_DATABASE)
    assert database.inputs["databaseName"] == "clickstream"
    assert database.protect is cfg.termination_protection
    assert run.output(Output.KAFKA_CONSUMER_GROUP.value) == cfg.consumer_group


def test_kafka_acls_are_least_privilege(dev_run: ProgramRun, dev_config: dict[str, str]) -> None:
    cfg = expected_config(dev_config)
    acls = [(a.inputs["username"], a.inputs["topic"], a.inputs["permission"]) for a in dev_run.of_type(KAFKA_ACL)]
    assert acl_violations(acls, cfg) == []
    assert not any(user == "clickstream-producer" and perm != "write" for user, _, perm in acls)
    assert not any(
        user == "clickstream-consumer" and topic == cfg.events_topic and perm != "read" for user, topic, perm in acls
    )
    usernames = {u.inputs["username"] for u in dev_run.of_type(KAFKA_USER)}
    assert usernames == {"clickstream-producer", "clickstream-consumer"}


@pytest.mark.parametrize(
    "bad_acl",
    [
        ("clickstream-producer", "dev-clickstream-events", "readwrite"),
        ("clickstream-producer", "dev-clickstream-events", "read"),
        ("clickstream-consumer", "dev-clickstream-events", "write"),
        ("clickstream-consumer", "*", "read"),
    ],
)
def test_acl_checker_catches_over_privilege(bad_acl: tuple[str, str, str]) -> None:
    cfg = PlatformConfig(project="x", name_prefix="dev")
    good = [
        ("clickstream-producer", cfg.events_topic, "write"),
        ("clickstream-consumer", cfg.events_topic, "read"),
        ("clickstream-consumer", cfg.dead_letter_topic, "write"),
    ]
    assert acl_violations(good, cfg) == []
    assert acl_violations([*good, bad_acl], cfg) != []


def test_opensearch_pipeline_user_is_limited_to_pipeline_indices(dev_run: ProgramRun) -> None:
    assert only(dev_run, OPENSEARCH)["opensearchUserConfig"]["opensearchDashboards"] == {"enabled": True}
    user = only(dev_run, OS_USER)["username"]
    rules = {(r.inputs["username"], r.inputs["index"], r.inputs["permission"]) for r in dev_run.of_type(OS_ACL_RULE)}
    # write: _bulk, index creation and _mapping; no _search/_mget the pipeline never calls.
    assert rules == {(user, pattern, "write") for pattern in PIPELINE_INDEX_PATTERNS}
    assert set(PIPELINE_INDEX_PATTERNS) == {"clickstream-events*", "clickstream-sessions*"}
    acl_config = only(dev_run, OS_ACL_CONFIG)
    assert acl_config["enabled"] is True and acl_config["extendedAcl"] is True


def test_opensearch_acls_are_enforced_before_the_pipeline_user_exists(dev_run: ProgramRun) -> None:
    """Aiven may give users that exist when ACLs are switched on full access; order matters."""
    (acl_config,) = dev_run.of_type(OS_ACL_CONFIG)
    (user,) = dev_run.of_type(OS_USER)
    assert acl_config.urn in user.dependencies
    first_rule, second_rule = dev_run.of_type(OS_ACL_RULE)  # registration order
    assert acl_config.urn in first_rule.dependencies
    assert first_rule.urn in second_rule.dependencies  # one writer at a time on the ACL document


def test_destroy_removes_everything_in_one_run(config_run: tuple[PlatformConfig, ProgramRun]) -> None:
    """Every child goes with its service; the database before its role; protection only on request."""
    cfg, run = config_run
    services = {t: only_resource(run, t).urn for t in SERVICES}
    home = {
        TOPIC: KAFKA,
        KAFKA_USER: KAFKA,
        KAFKA_ACL: KAFKA,
        PG_DATABASE: PG,
        PG_USER: PG,
        OS_USER: OPENSEARCH,
        OS_ACL_CONFIG: OPENSEARCH,
        OS_ACL_RULE: OPENSEARCH,
    }
    children = [r for r in run.resources if r.type not in (COMPONENT, *SERVICES)]
    assert {r.type for r in children} == set(home)
    assert {(r.type, r.name): r.deleted_with for r in children} == {
        (r.type, r.name): services[home[r.type]] for r in children
    }
    assert all(not r.deleted_with for r in run.resources if r.type in (COMPONENT, *SERVICES))
    (database,), (role,) = run.of_type(PG_DATABASE), run.of_type(PG_USER)
    assert role.urn in database.dependencies  # so the database is deleted first
    data = {TOPIC, PG_DATABASE}
    assert {(r.type, r.name): bool(r.protect) for r in run.resources} == {
        (r.type, r.name): cfg.termination_protection and r.type in data for r in run.resources
    }


def test_postgres_app_user_is_not_the_admin(dev_run: ProgramRun) -> None:
    assert only(dev_run, PG_USER)["username"] not in ("avnadmin", "postgres")


# Outputs --------------------------------------------------------------------------------


def test_every_contract_name_is_exported_and_every_secret_is_secret(dev_run: ProgramRun) -> None:
    assert set(dev_run.stack_wire_outputs) == {o.value for o in Output}
    assert secret_violations(dev_run.stack_wire_outputs) == []
    assert sum(dev_run.is_secret(o.value) for o in Output if o.secret) == sum(o.secret for o in Output) > 0


def test_secret_checker_catches_plaintext_and_missing_outputs(dev_run: ProgramRun) -> None:
    wire = dict(dev_run.stack_wire_outputs)
    wire[Output.POSTGRES_APP_URI.value] = dev_run.output(Output.POSTGRES_APP_URI.value)  # secret flag stripped
    assert secret_violations(wire) == [f"{Output.POSTGRES_APP_URI.value} is not secret"]
    del wire[Output.KAFKA_BOOTSTRAP.value]
    assert f"{Output.KAFKA_BOOTSTRAP.value} not exported" in secret_violations(wire)
    assert unwrap(secret_wire("x")) == ("x", True)


def test_the_mock_engine_applies_the_provider_sdks_own_secrecy(run_program: ProgramRunner) -> None:
    """A provider output the SDK lists in additional_secret_outputs arrives secret, as with the real engine."""

    def program() -> None:
        kafka = aiven.Kafka("k", project="p", cloud_name="c", plan="business-4", service_name="s")
        user = aiven.KafkaUser("u", project="p", service_name=kafka.service_name, username="x")
        pulumi.export("cert", user.access_cert)  # no Output.secret here
        pulumi.export("name", user.username)

    run = run_program.run({}, program)
    (user,) = run.of_type(KAFKA_USER)
    assert {"accessCert", "accessKey"} <= set(user.additional_secret_outputs)
    assert run.is_secret("cert") and not run.is_secret("name")


def test_contract_outputs_refuses_an_incomplete_mapping() -> None:
    values = {o: "x" for o in Output if o is not Output.OPENSEARCH_DASHBOARDS_URI}
    with pytest.raises(ValueError, match=Output.OPENSEARCH_DASHBOARDS_URI.value):
        contract_outputs(values)


def test_kafka_outputs(dev_run: ProgramRun, dev_config: dict[str, str]) -> None:
    cfg = expected_config(dev_config)
    kafka_host = f"{cfg.kafka_service_name}-{cfg.project}.e.aivencloud.com"
    assert dev_run.output(Output.KAFKA_BOOTSTRAP.value) == f"{kafka_host}:{KAFKA_PORT}"
    assert dev_run.output(Output.KAFKA_CA_CERT.value) == PROJECT_CA
    assert dev_run.output(Output.KAFKA_ADMIN_CERT.value) == pem("CERTIFICATE", "kafka-admin")
    assert dev_run.output(Output.KAFKA_ADMIN_KEY.value) == pem("PRIVATE KEY", "kafka-admin")
    assert dev_run.output(Output.KAFKA_PRODUCER_CERT.value) == pem("CERTIFICATE", "clickstream-producer")
    assert dev_run.output(Output.KAFKA_PRODUCER_KEY.value) == pem("PRIVATE KEY", "clickstream-producer")
    assert dev_run.output(Output.KAFKA_CONSUMER_CERT.value) == pem("CERTIFICATE", "clickstream-consumer")
    assert dev_run.output(Output.KAFKA_CONSUMER_KEY.value) == pem("PRIVATE KEY", "clickstream-consumer")
    assert dev_run.output(Output.KAFKA_EVENTS_TOPIC.value) == cfg.events_topic
    assert dev_run.output(Output.KAFKA_DEAD_LETTER_TOPIC.value) == cfg.dead_letter_topic


def test_postgres_outputs(dev_run: ProgramRun, dev_config: dict[str, str]) -> None:
    cfg = expected_config(dev_config)
    pg_host = f"{cfg.postgres_service_name}-{cfg.project}.e.aivencloud.com"
    for name, user, password in (
        (Output.POSTGRES_APP_URI, "clickstream_app", PG_APP_PASSWORD),
        (Output.POSTGRES_ADMIN_URI, "avnadmin", PG_ADMIN_PASSWORD),
    ):
        parts = urlsplit(dev_run.output(name.value))
        assert parts.scheme == "postgres"
        assert (unquote(parts.username or ""), unquote(parts.password or "")) == (user, password)
        assert (parts.hostname, parts.port, parts.path) == (pg_host, PG_PORT, "/clickstream")
        assert parse_qs(parts.query)["sslmode"] == ["verify-full"]
    assert dev_run.output(Output.POSTGRES_CA_CERT.value) == PROJECT_CA


def test_opensearch_outputs(dev_run: ProgramRun, dev_config: dict[str, str]) -> None:
    cfg = expected_config(dev_config)
    os_host = f"{cfg.opensearch_service_name}-{cfg.project}.e.aivencloud.com"
    pipeline = urlsplit(dev_run.output(Output.OPENSEARCH_URI.value))
    assert (pipeline.scheme, pipeline.hostname, pipeline.port) == ("https", os_host, OPENSEARCH_PORT)
    assert (unquote(pipeline.username or ""), unquote(pipeline.password or "")) == (
        "clickstream-pipeline",
        OPENSEARCH_PIPELINE_PASSWORD,
    )
    assert dev_run.output(Output.OPENSEARCH_CA_CERT.value) == PROJECT_CA
    admin_base = f"https://avnadmin:{OPENSEARCH_ADMIN_PASSWORD}@{os_host}"
    assert dev_run.output(Output.OPENSEARCH_ADMIN_URI.value) == f"{admin_base}:{OPENSEARCH_PORT}"
    assert dev_run.output(Output.OPENSEARCH_DASHBOARDS_URI.value) == f"{admin_base}:443"


# Failure and isolation ------------------------------------------------------------------


def test_missing_project_fails_the_program_with_a_clear_message(
    run_program: ProgramRunner, dev_config: dict[str, str]
) -> None:
    config = {k: v for k, v in dev_config.items() if k != "clickstream:project"}
    with pytest.raises(ConfigError, match=r"'clickstream:project'.*pulumi config set clickstream:project"):
        run_program(config)
    assert run_program.runs == 0
    # The runtime is usable again right after a failed run.
    assert Counter(r.type for r in run_program(dev_config).resources) == EXPECTED_COUNTS


def test_runs_are_isolated(run_program: ProgramRunner, dev_config: dict[str, str]) -> None:
    first = run_program(dev_config)
    second = run_program(CUSTOM_CONFIG)
    assert run_program.runs == 2
    assert Counter(r.type for r in second.resources) == EXPECTED_COUNTS
    assert {only(second, t)["cloudName"] for t in SERVICES} == {"aws-eu-west-1"}
    assert first.output(Output.KAFKA_EVENTS_TOPIC.value) == "dev-clickstream-events"
    assert second.output(Output.KAFKA_EVENTS_TOPIC.value) == "prod-clickstream-events"


def test_component_outputs_via_apply_actually_run(run_program: ProgramRunner) -> None:
    """The Output.all(...).apply style of check, with a counter proving the check ran."""
    checked: list[str] = []
    dry_run: list[bool] = []

    def check(values: list[Any]) -> None:
        bootstrap, app_uri = values
        assert bootstrap.endswith(f":{KAFKA_PORT}")
        assert urlsplit(app_uri).path == "/clickstream"
        checked.append(bootstrap)

    def program() -> None:
        dry_run.append(pulumi.runtime.is_dry_run())
        platform = ClickstreamPlatform("clickstream", PlatformConfig(project="acme"))
        assert set(platform.stack_outputs) == set(Output)
        pulumi.Output.all(
            platform.stack_outputs[Output.KAFKA_BOOTSTRAP], platform.stack_outputs[Output.POSTGRES_APP_URI]
        ).apply(check)

    run_program.run({}, program)
    assert dry_run == [False], "the harness must run as an update (preview=False), not a preview"
    assert checked == ["dev-clickstream-kafka-acme.e.aivencloud.com:12693"]
