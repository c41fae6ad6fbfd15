"""The program against Aiven's own API schema (pinned in infra/aiven_schema.py), not against mocks alone.

Mocks accept any value; Aiven does not. Every user config the program sends, for the
defaults and for every stack file in the repository, is checked against the schema of
the pinned version, and so is every version a user can configure.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from infra.aiven_schema import EMBEDDED_ENUMS, SCHEMA_VERSION
from infra.config import ConfigError, PlatformConfig, config_key_of
from tests.infra.aiven_api_schema import (
    USER_CONFIGS,
    SchemaUnavailable,
    enum_values,
    newest_version,
    service_types,
    validate_user_config,
)
from tests.infra.infra_harness import PROJECT_ROOT, ProgramRunner, config_from, load_yaml, stack_config

VERSION_FIELDS = {
    ("kafka", "kafka_version"): "kafka_version",
    ("pg", "pg_version"): "postgres_version",
    ("opensearch", "opensearch_version"): "opensearch_version",
}
STACK_FILES = sorted(PROJECT_ROOT.glob("Pulumi.*.yaml"))
STANDARD = {"clickstream:kafkaFlavor": "standard", "clickstream:kafkaPlan": "an-offering"}
#: User-config keys Aiven takes only when a service is created (``create_only`` in the
#: schema): choosing Standard Kafka is final. A new one appearing here needs a README line.
EXPECTED_CREATE_ONLY = {"classic": set(), "standard": {"kafka.inkless.enabled"}}


@pytest.fixture(scope="session")
def schema() -> dict[str, Any]:
    try:
        return service_types(SCHEMA_VERSION)
    except SchemaUnavailable as exc:
        pytest.fail(f"Aiven's API schema {SCHEMA_VERSION} could not be fetched: {exc}")


def configs() -> dict[str, dict[str, str]]:
    """Every configuration the repository ships, as the CLI would hand it to the program."""
    project = load_yaml(PROJECT_ROOT / "Pulumi.yaml")
    only_project = {"clickstream:project": "my-aiven-project"}
    found = {
        "code defaults": only_project,
        "Pulumi.yaml defaults": stack_config(project, {"config": only_project}),
        "code defaults, standard Kafka": only_project | STANDARD,
    }
    for path in STACK_FILES:
        found[path.name] = stack_config(project, load_yaml(path))
        found[f"{path.name}, standard Kafka"] = found[path.name] | STANDARD
    return found


def test_the_repository_has_stack_files_to_check() -> None:
    assert [p.name for p in STACK_FILES] == ["Pulumi.dev.yaml"]


@pytest.mark.parametrize("name", list(configs()))
def test_every_user_config_the_program_sends_is_valid(schema: dict[str, Any], name: str) -> None:
    raw = configs()[name]
    run = ProgramRunner()(raw)
    checked = 0
    create_only: set[str] = set()
    for token, (service, key) in USER_CONFIGS.items():
        (resource,) = run.of_type(token)
        report = validate_user_config(schema, service, resource.inputs[key])
        assert report.problems == [], f"{name}: {service} user config rejected by schema {SCHEMA_VERSION}"
        create_only |= set(report.create_only)
        checked += 1
    assert checked == 3
    flavor = "standard" if raw.get("clickstream:kafkaFlavor") == "standard" else "classic"
    assert create_only == EXPECTED_CREATE_ONLY[flavor]


@pytest.mark.parametrize(("service", "key"), list(EMBEDDED_ENUMS))
def test_embedded_versions_equal_the_pinned_schema(schema: dict[str, Any], service: str, key: str) -> None:
    assert EMBEDDED_ENUMS[(service, key)] == enum_values(schema, service, key, deprecated=False)


@pytest.mark.parametrize(("service", "key"), list(VERSION_FIELDS))
def test_config_accepts_exactly_the_versions_aiven_creates(schema: dict[str, Any], service: str, key: str) -> None:
    """Every value of the schema's enum: accepted when live, a ConfigError naming the live ones when deprecated."""
    field_name = VERSION_FIELDS[(service, key)]
    live = enum_values(schema, service, key, deprecated=False)
    dead = enum_values(schema, service, key, deprecated=True)
    assert live and dead, "nothing to check"
    # timescaledb off: it narrows the PostgreSQL versions further (tested in test_infra_config).
    for version in live:
        assert (
            getattr(PlatformConfig(project="acme", timescaledb=False, **{field_name: version}), field_name) == version
        )
    for version in (*dead, "99.9", "latest"):
        with pytest.raises(ConfigError) as error:
            PlatformConfig(project="acme", timescaledb=False, **{field_name: version})
        message = str(error.value)
        assert f"{config_key_of(field_name)} is {version!r}" in message
        assert ", ".join(live) in message


@pytest.mark.parametrize("name", [p.name for p in STACK_FILES])
def test_stack_files_pick_versions_aiven_creates(schema: dict[str, Any], name: str) -> None:
    project = load_yaml(PROJECT_ROOT / "Pulumi.yaml")
    cfg = config_from(stack_config(project, load_yaml(PROJECT_ROOT / name)))
    for (service, key), field_name in VERSION_FIELDS.items():
        assert getattr(cfg, field_name) in enum_values(schema, service, key, deprecated=False)


@pytest.mark.parametrize(
    ("service", "config", "complaint"),
    [
        ("kafka", {"kafkaVersion": "3.8"}, "'3.8' is deprecated"),
        ("kafka", {"kafkaVersion": "9.9"}, "not one of"),
        ("kafka", {"noSuchKey": True}, "not a key of the schema"),
        ("kafka", {"schemaRegistry": "yes"}, "not of type boolean"),
        ("kafka", {"kafkaAuthenticationMethods": {"certificate": True, "kerberos": True}}, "kerberos: not a key"),
        ("kafka", {"ipFilterStrings": ["x" * 44]}, "longer than 43"),
        ("kafka", {"tieredStorage": {"localCache": {}}}, "deprecated key"),
        ("pg", {"pgVersion": "13"}, "'13' is deprecated"),
        ("pg", {"backupHour": 24.0}, "above the maximum"),
        ("pg", {"backupHour": 1.5}, "not of type integer"),
        ("opensearch", {"opensearchVersion": "2"}, "'2' is deprecated"),
    ],
)
def test_the_validator_refuses_what_aiven_refuses(
    schema: dict[str, Any], service: str, config: dict[str, Any], complaint: str
) -> None:
    problems = validate_user_config(schema, service, config).problems
    assert len(problems) == 1 and complaint in problems[0], problems


def test_the_old_defaults_would_have_been_refused(schema: dict[str, Any]) -> None:
    """The values this program shipped with before it checked the schema: each one is caught."""
    assert validate_user_config(schema, "kafka", {"kafkaVersion": "3.8"}).problems
    assert validate_user_config(schema, "opensearch", {"opensearchVersion": "2"}).problems


def test_the_newest_published_schema_still_accepts_every_default() -> None:
    """Reports when Aiven deprecates a default in a schema newer than the pinned one.

    Needs the Go module proxy; only where it cannot be reached, and never in CI, is
    this skipped.
    """
    try:
        newest = newest_version()
        schema = service_types(newest)
    except SchemaUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"the Go module proxy is needed in CI to read the newest Aiven schema: {exc}")
        pytest.skip(f"Go module proxy unreachable: {exc}")
    defaults = PlatformConfig(project="acme")
    retired = [
        f"{config_key_of(field_name)} default {getattr(defaults, field_name)!r}"
        for (service, key), field_name in VERSION_FIELDS.items()
        if getattr(defaults, field_name) not in enum_values(schema, service, key, deprecated=False)
    ]
    assert retired == [], f"Aiven's API schema {newest} (newest; pinned: {SCHEMA_VERSION}) no longer offers: {retired}"
    run = ProgramRunner()({"clickstream:project": "acme"})
    for token, (service, key) in USER_CONFIGS.items():
        (resource,) = run.of_type(token)
        assert validate_user_config(schema, service, resource.inputs[key]).problems == [], newest
