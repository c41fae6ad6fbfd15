"""Typed stack configuration for the clickstream Pulumi program.

Every key the program reads is a field of :class:`PlatformConfig`, and every optional
key's default lives here, once. Pulumi.yaml declares the same keys and defaults so the
CLI can document and validate them, but the Pulumi CLI applies those defaults only when
it runs the program itself; unit tests under Pulumi's mocks (and any other embedding)
see just the keys that were set. Keeping the defaults in code makes the program behave
the same everywhere, and a test holds Pulumi.yaml to these values.

Nothing here creates resources: it turns raw configuration into a validated, frozen
value, and derives the names (services, topics, consumer group) from the name prefix so
two stacks can share one Aiven project without colliding.
"""

from __future__ import annotations

import ipaddress
import re
import typing
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Protocol

import pulumi

from infra.aiven_schema import KAFKA_VERSIONS, OPENSEARCH_VERSIONS, POSTGRES_VERSIONS, SCHEMA_VERSION
from pipeline.contract import names

#: The Pulumi config namespace of this project; equals ``name`` in Pulumi.yaml.
CONFIG_NAMESPACE = names.PROJECT

#: Field metadata key holding the (unqualified) Pulumi config key of a field.
_KEY = "pulumi_key"

#: Aiven service names allow lowercase letters, digits and hyphens and start with a letter.
_PREFIX_PATTERN = re.compile(r"^[a-z][a-z0-9-]*$")
_MAX_PREFIX_LENGTH = 24  # keeps "<prefix>-clickstream-opensearch" well under Aiven's 64 chars

#: ``classic``: fixed plans with local broker disks (what existing Aiven accounts have).
#: ``standard``: Aiven's "Standard" Kafka (called ``inkless`` in the API), the only Kafka
#: new accounts can create: Kafka 4.x, tiered storage on, a throughput offering as plan.
KAFKA_FLAVORS = ("classic", "standard")
#: Fixed Classic plan names (``startup-4``, ``business-8``...); Standard takes offering names instead.
_CLASSIC_PLAN = re.compile(r"^(hobbyist|startup|business|premium)-\d+$")
#: PostgreSQL majors whose Aiven build ships TimescaleDB (2.21.3 on each; none on 18), per
#: https://aiven.io/docs/products/postgresql/reference/list-of-extensions-for-each-version
TIMESCALEDB_POSTGRES_VERSIONS = ("15", "16", "17")
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_TIME_OF_DAY = re.compile(r"^([01]\d|2[0-3]):[0-5]\d:[0-5]\d$")
_MAX_TAG_VALUE = 64


class ConfigError(pulumi.RunError):
    """Stack configuration is missing or invalid.

    A ``RunError`` so the Pulumi CLI prints the message alone, without a Python traceback:
    the message is the whole diagnosis and names the command that fixes it.
    """


def qualified_key(key: str) -> str:
    """Return the namespaced key as users type it, e.g. ``clickstream:project``."""
    return f"{CONFIG_NAMESPACE}:{key}"


def _key(name: str) -> dict[str, str]:
    return {_KEY: name}


@dataclass(frozen=True)
class PlatformConfig:
    """All settings of one stack. Defaults here must equal the defaults in Pulumi.yaml."""

    project: str = field(metadata=_key("project"))
    cloud_name: str = field(default="google-europe-north1", metadata=_key("cloudName"))
    name_prefix: str = field(default="dev", metadata=_key("namePrefix"))
    owner: str = field(default="", metadata=_key("owner"))
    kafka_flavor: str = field(default="classic", metadata=_key("kafkaFlavor"))
    kafka_plan: str = field(default="business-4", metadata=_key("kafkaPlan"))
    kafka_version: str = field(default="4.3", metadata=_key("kafkaVersion"))
    postgres_plan: str = field(default="startup-4", metadata=_key("postgresPlan"))
    postgres_version: str = field(default="17", metadata=_key("postgresVersion"))
    opensearch_plan: str = field(default="startup-4", metadata=_key("opensearchPlan"))
    opensearch_version: str = field(default="2.19", metadata=_key("opensearchVersion"))
    topic_partitions: int = field(default=6, metadata=_key("topicPartitions"))
    topic_replication: int = field(default=3, metadata=_key("topicReplication"))
    topic_min_insync_replicas: int = field(default=2, metadata=_key("topicMinInsyncReplicas"))
    topic_retention_hours: int = field(default=168, metadata=_key("topicRetentionHours"))
    timescaledb: bool = field(default=True, metadata=_key("timescaledb"))
    allowed_cidrs: str = field(default="0.0.0.0/0,::/0", metadata=_key("allowedCidrs"))
    maintenance_dow: str = field(default="sunday", metadata=_key("maintenanceDow"))
    maintenance_time: str = field(default="03:00:00", metadata=_key("maintenanceTime"))
    termination_protection: bool = field(default=False, metadata=_key("terminationProtection"))

    def __post_init__(self) -> None:
        """Reject values Aiven would refuse late (mid-``pulumi up``) or that break the pipeline."""
        problems: list[str] = []
        for name in ("project", "cloud_name", "kafka_plan", "postgres_plan", "opensearch_plan"):
            if not str(getattr(self, name)).strip():
                problems.append(f"{config_key_of(name)} must not be empty")
        if not _PREFIX_PATTERN.match(self.name_prefix) or len(self.name_prefix) > _MAX_PREFIX_LENGTH:
            problems.append(
                f"{config_key_of('name_prefix')} is {self.name_prefix!r}: use lowercase letters, "
                f"digits and hyphens, start with a letter, at most {_MAX_PREFIX_LENGTH} characters"
            )
        if self.topic_partitions < 1:
            problems.append(f"{config_key_of('topic_partitions')} must be at least 1")
        if self.topic_replication < 1:
            problems.append(f"{config_key_of('topic_replication')} must be at least 1")
        if not 1 <= self.topic_min_insync_replicas <= self.topic_replication:
            problems.append(
                f"{config_key_of('topic_min_insync_replicas')} is {self.topic_min_insync_replicas}: "
                f"it must be between 1 and {config_key_of('topic_replication')} "
                f"({self.topic_replication}), or producers with acks=all can never write"
            )
        if self.topic_retention_hours < 1:
            problems.append(f"{config_key_of('topic_retention_hours')} must be at least 1")
        problems += self._service_problems()
        if problems:
            raise ConfigError("Invalid stack configuration:\n  - " + "\n  - ".join(problems))

    def _service_problems(self) -> list[str]:
        """Versions, Kafka flavor, network and maintenance settings Aiven would refuse mid-deployment."""
        problems = [
            _version_problem(config_key_of(name), str(getattr(self, name)), valid)
            for name, valid in (
                ("kafka_version", KAFKA_VERSIONS),
                ("postgres_version", POSTGRES_VERSIONS),
                ("opensearch_version", OPENSEARCH_VERSIONS),
            )
        ]
        if (
            self.timescaledb
            and self.postgres_version in POSTGRES_VERSIONS
            and self.postgres_version not in TIMESCALEDB_POSTGRES_VERSIONS
        ):
            problems.append(
                f"{config_key_of('timescaledb')} is true but Aiven's PostgreSQL {self.postgres_version} has no "
                f"TimescaleDB (it has on {', '.join(TIMESCALEDB_POSTGRES_VERSIONS)}); set "
                f"{config_key_of('timescaledb')} to false or pick one of those versions"
            )
        flavor = config_key_of("kafka_flavor")
        if self.kafka_flavor not in KAFKA_FLAVORS:
            problems.append(f"{flavor} is {self.kafka_flavor!r}: use one of {', '.join(KAFKA_FLAVORS)}")
        elif self.kafka_flavor == "standard":
            if not self.kafka_version.startswith("4."):
                problems.append(
                    f"{flavor} standard runs Kafka 4.x only; {config_key_of('kafka_version')} is {self.kafka_version!r}"
                )
            if _CLASSIC_PLAN.match(self.kafka_plan):
                problems.append(
                    f"{config_key_of('kafka_plan')} is the Classic plan {self.kafka_plan!r}: Standard Kafka takes a "
                    "throughput offering as its plan; list them with `avn inkless offering list "
                    "--organization-id ORG --project PROJECT` and set it with "
                    f"`pulumi config set {config_key_of('kafka_plan')} OFFERING`"
                )
        try:
            _ = self.ip_filter  # parsing it is the check
        except ValueError as exc:
            problems.append(f"{config_key_of('allowed_cidrs')}: {exc}")
        if self.maintenance_dow not in _WEEKDAYS:
            problems.append(
                f"{config_key_of('maintenance_dow')} is {self.maintenance_dow!r}: use a weekday in "
                f"lowercase English ({', '.join(_WEEKDAYS)})"
            )
        if not _TIME_OF_DAY.match(self.maintenance_time):
            problems.append(f"{config_key_of('maintenance_time')} is {self.maintenance_time!r}: use HH:MM:SS (UTC)")
        if len(self.owner) > _MAX_TAG_VALUE:
            problems.append(f"{config_key_of('owner')} is longer than {_MAX_TAG_VALUE} characters")
        return [p for p in problems if p]

    @property
    def ip_filter(self) -> list[str]:
        """``allowed_cidrs`` as the list of networks Aiven's ``ip_filter`` takes; raises ValueError if malformed."""
        networks = [part.strip() for part in self.allowed_cidrs.split(",") if part.strip()]
        if not networks:
            raise ValueError("give at least one CIDR block (0.0.0.0/0,::/0 opens the services to everyone)")
        for network in networks:
            try:
                ipaddress.ip_network(network, strict=True)
            except ValueError as exc:
                raise ValueError(f"{network!r} is not a CIDR block ({exc})") from None
        return networks

    # Names derived from the prefix: one place, so the outputs and the resources agree.

    @property
    def kafka_service_name(self) -> str:
        return f"{self.name_prefix}-{names.PROJECT}-kafka"

    @property
    def postgres_service_name(self) -> str:
        return f"{self.name_prefix}-{names.PROJECT}-pg"

    @property
    def opensearch_service_name(self) -> str:
        return f"{self.name_prefix}-{names.PROJECT}-opensearch"

    @property
    def events_topic(self) -> str:
        return names.prefixed(self.name_prefix, names.EVENTS_TOPIC)

    @property
    def dead_letter_topic(self) -> str:
        return names.prefixed(self.name_prefix, names.DEAD_LETTER_TOPIC)

    @property
    def consumer_group(self) -> str:
        return names.prefixed(self.name_prefix, names.CONSUMER_GROUP)

    @property
    def topic_retention_ms(self) -> int:
        return self.topic_retention_hours * 3600 * 1000


def _version_problem(key: str, value: str, valid: tuple[str, ...]) -> str:
    """Empty when Aiven still creates services of ``value``, else a message naming the versions it does."""
    if value in valid:
        return ""
    return (
        f"{key} is {value!r}, which Aiven deprecated or does not know; it creates services of "
        f"{', '.join(valid)} (API schema {SCHEMA_VERSION}): `pulumi config set {key} {valid[-1]}`"
    )


class ConfigSource(Protocol):
    """The slice of :class:`pulumi.Config` this module uses; tests may pass a fake."""

    def get(self, key: str) -> str | None: ...

    def get_int(self, key: str) -> int | None: ...

    def get_bool(self, key: str) -> bool | None: ...


def config_key_of(field_name: str) -> str:
    """Return the qualified Pulumi key of a :class:`PlatformConfig` field, for messages."""
    for f in fields(PlatformConfig):
        if f.name == field_name:
            return qualified_key(f.metadata[_KEY])
    raise KeyError(field_name)


def config_keys() -> dict[str, str]:
    """Map each field name to its unqualified Pulumi config key."""
    return {f.name: f.metadata[_KEY] for f in fields(PlatformConfig)}


def config_defaults() -> dict[str, Any]:
    """Map each optional key (unqualified, as in Pulumi.yaml) to its default."""
    return {f.metadata[_KEY]: f.default for f in fields(PlatformConfig) if f.default is not MISSING}


def required_keys() -> list[str]:
    """Unqualified keys without a default: the program stops if one is unset."""
    return [f.metadata[_KEY] for f in fields(PlatformConfig) if f.default is MISSING]


def _read(source: ConfigSource, key: str, kind: type) -> Any:
    if kind is bool:
        return source.get_bool(key)
    if kind is int:
        return source.get_int(key)
    value = source.get(key)
    return value if value not in (None, "") else None


def load_config(source: ConfigSource | None = None) -> PlatformConfig:
    """Read every key once, apply defaults, and fail clearly on a missing required key."""
    source = source if source is not None else pulumi.Config(CONFIG_NAMESPACE)
    hints = typing.get_type_hints(PlatformConfig)
    values: dict[str, Any] = {}
    for f in fields(PlatformConfig):
        key = f.metadata[_KEY]
        value = _read(source, key, hints[f.name])
        if value is None:
            if f.default is MISSING:
                raise ConfigError(
                    f"Missing required configuration {qualified_key(key)!r}. "
                    f"Set it with: pulumi config set {qualified_key(key)} <value>"
                    + (" (the name of your Aiven project)" if key == "project" else "")
                )
            continue
        values[f.name] = value
    return PlatformConfig(**values)
