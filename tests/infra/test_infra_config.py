"""Pulumi.yaml, Pulumi.dev.yaml and infra/config.py must tell the same story.

The Pulumi CLI applies Pulumi.yaml defaults; mocks and embeddings do not, so the program
carries its own. These tests keep the two in lockstep and pin the config's failure modes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pulumi
import pytest

from infra.config import (
    CONFIG_NAMESPACE,
    ConfigError,
    PlatformConfig,
    config_defaults,
    config_keys,
    load_config,
    required_keys,
)
from tests.infra.infra_harness import config_from, dev_stack_problems, stack_config

_YAML_TYPES = {str: "string", int: "integer", bool: "boolean"}


@pytest.fixture
def set_config() -> Iterator[Any]:
    """Set raw Pulumi config (as the CLI would) for load_config; cleared afterwards."""

    def _set(values: dict[str, str]) -> None:
        pulumi.runtime.set_all_config(values, [])

    yield _set
    pulumi.runtime.set_all_config({}, [])


def test_pulumi_yaml_project_settings(pulumi_yaml: dict[str, Any]) -> None:
    assert pulumi_yaml["name"] == CONFIG_NAMESPACE == "clickstream"
    assert pulumi_yaml["main"] == "infra/"
    runtime = pulumi_yaml["runtime"]
    assert runtime["name"] == "python"
    assert runtime["options"] == {"toolchain": "pip", "virtualenv": ".venv"}


def test_schema_declares_exactly_the_keys_the_program_reads(pulumi_yaml: dict[str, Any]) -> None:
    assert set(pulumi_yaml["config"]) == set(config_keys().values())


def test_every_key_is_typed_and_described(pulumi_yaml: dict[str, Any]) -> None:
    hints = {f: type(PlatformConfig.__dataclass_fields__[f].default) for f in PlatformConfig.__dataclass_fields__}
    for field_name, key in config_keys().items():
        spec = pulumi_yaml["config"][key]
        assert spec.get("description", "").strip(), f"{key} has no description"
        expected_type = "string" if key in required_keys() else _YAML_TYPES[hints[field_name]]
        assert spec["type"] == expected_type, key


def test_code_defaults_equal_pulumi_yaml_defaults(pulumi_yaml: dict[str, Any]) -> None:
    yaml_defaults = {key: spec["default"] for key, spec in pulumi_yaml["config"].items() if "default" in spec}
    code_defaults = config_defaults()
    assert yaml_defaults == code_defaults
    for key, value in code_defaults.items():  # "3.8" vs 3.8 or "true" vs True would slip past ==
        assert type(yaml_defaults[key]) is type(value), key


def test_project_is_the_only_required_key(pulumi_yaml: dict[str, Any]) -> None:
    assert required_keys() == ["project"]
    assert "default" not in pulumi_yaml["config"]["project"]


def test_dev_stack_sets_only_declared_keys_and_no_plaintext_token(
    pulumi_yaml: dict[str, Any], dev_stack_yaml: dict[str, Any]
) -> None:
    assert dev_stack_problems(pulumi_yaml, dev_stack_yaml) == []
    # Dev runs a startup Kafka plan, where replication 3 is not the norm. Read through the
    # program's own loader: after `pulumi config set` the file holds strings, not numbers.
    assert config_from(stack_config(pulumi_yaml, dev_stack_yaml)).topic_replication <= 2


@pytest.mark.parametrize(
    "stack_yaml",
    [
        {"config": {"clickstream:project": "p", "aiven:apiToken": "plain-text"}},
        {"config": {"clickstream:project": "p", "clickstream:kafkaVersoin": "4.3"}},
        {"config": {"clickstream:namePrefix": "dev"}},
    ],
)
def test_dev_stack_checker_catches_mistakes(pulumi_yaml: dict[str, Any], stack_yaml: dict[str, Any]) -> None:
    assert len(dev_stack_problems(pulumi_yaml, stack_yaml)) == 1


def test_load_config_applies_code_defaults_when_only_project_is_set(set_config: Any) -> None:
    set_config({"clickstream:project": "acme"})
    cfg = load_config()
    assert cfg == PlatformConfig(project="acme")
    for field_name, key in config_keys().items():
        if key in config_defaults():
            assert getattr(cfg, field_name) == config_defaults()[key]


def test_load_config_parses_every_type(set_config: Any) -> None:
    set_config(
        {
            "clickstream:project": "acme",
            "clickstream:topicPartitions": "12",
            "clickstream:timescaledb": "false",
            "clickstream:terminationProtection": "true",
            "clickstream:kafkaVersion": "3.9",
        }
    )
    cfg = load_config()
    assert (cfg.topic_partitions, cfg.timescaledb, cfg.termination_protection, cfg.kafka_version) == (
        12,
        False,
        True,
        "3.9",
    )


@pytest.mark.parametrize("config", [{}, {"clickstream:project": ""}])
def test_missing_project_names_the_key_and_the_fix(set_config: Any, config: dict[str, str]) -> None:
    set_config(config)
    with pytest.raises(ConfigError) as error:
        load_config()
    message = str(error.value)
    assert "'clickstream:project'" in message
    assert "pulumi config set clickstream:project <value>" in message
    assert isinstance(error.value, pulumi.RunError)  # the CLI prints it without a traceback


@pytest.mark.parametrize(
    ("changes", "named_key"),
    [
        ({"name_prefix": "Prod"}, "clickstream:namePrefix"),
        ({"name_prefix": "x" * 25}, "clickstream:namePrefix"),
        ({"name_prefix": "9lives"}, "clickstream:namePrefix"),
        ({"topic_partitions": 0}, "clickstream:topicPartitions"),
        ({"topic_replication": 2, "topic_min_insync_replicas": 3}, "clickstream:topicMinInsyncReplicas"),
        ({"topic_min_insync_replicas": 0}, "clickstream:topicMinInsyncReplicas"),
        ({"topic_retention_hours": 0}, "clickstream:topicRetentionHours"),
        ({"kafka_plan": " "}, "clickstream:kafkaPlan"),
        ({"kafka_flavor": "inkless"}, "clickstream:kafkaFlavor"),
        ({"kafka_flavor": "standard"}, "clickstream:kafkaPlan is the Classic plan"),
        ({"kafka_flavor": "standard", "kafka_plan": "offering", "kafka_version": "3.9"}, "runs Kafka 4.x only"),
        ({"postgres_version": "18"}, "PostgreSQL 18 has no TimescaleDB"),
        ({"allowed_cidrs": "10.0.0.1/8"}, "clickstream:allowedCidrs"),
        ({"allowed_cidrs": " , "}, "clickstream:allowedCidrs"),
        ({"allowed_cidrs": "0.0.0.0/0,example.com"}, "'example.com' is not a CIDR"),
        ({"maintenance_dow": "Sunday"}, "clickstream:maintenanceDow"),
        ({"maintenance_time": "3:00"}, "clickstream:maintenanceTime"),
        ({"maintenance_time": "24:00:00"}, "clickstream:maintenanceTime"),
        ({"owner": "x" * 65}, "clickstream:owner"),
    ],
)
def test_invalid_values_are_rejected_by_key(changes: dict[str, Any], named_key: str) -> None:
    with pytest.raises(ConfigError, match=named_key):
        PlatformConfig(project="acme", **changes)


def test_valid_alternatives_are_accepted() -> None:
    cfg = PlatformConfig(
        project="acme",
        kafka_flavor="standard",
        kafka_plan="any-offering",
        postgres_version="18",
        timescaledb=False,
        allowed_cidrs="203.0.113.7/32 , 2001:db8::/48",
        maintenance_dow="monday",
        maintenance_time="23:59:59",
        owner="x" * 64,
    )
    assert cfg.ip_filter == ["203.0.113.7/32", "2001:db8::/48"]


def test_names_derive_from_the_prefix() -> None:
    cfg = PlatformConfig(project="acme", name_prefix="prod")
    assert cfg.events_topic == "prod-clickstream-events"
    assert cfg.dead_letter_topic == "prod-clickstream-dead-letter"
    assert cfg.consumer_group == "prod-clickstream-sessionizer"
    assert {cfg.kafka_service_name, cfg.postgres_service_name, cfg.opensearch_service_name} == {
        "prod-clickstream-kafka",
        "prod-clickstream-pg",
        "prod-clickstream-opensearch",
    }
    assert max(len(n) for n in (cfg.kafka_service_name, cfg.opensearch_service_name)) <= 64
    assert PlatformConfig(project="acme", topic_retention_hours=2).topic_retention_ms == 7_200_000


def test_config_is_frozen() -> None:
    cfg = PlatformConfig(project="acme")
    with pytest.raises(AttributeError):
        cfg.project = "other"  # type: ignore[misc]
