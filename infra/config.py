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

import re
import typing
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Protocol

import pulumi

#: The Pulumi config namespace of this project; equals ``name`` in Pulumi.yaml.
CONFIG_NAMESPACE = "clickstream"

#: Field metadata key holding the (unqualified) Pulumi config key of a field.
_KEY = "pulumi_key"

#: Aiven service names allow lowercase letters, digits and hyphens and start with a letter.
_PREFIX_PATTERN = re.compile(r"^[a-z][a-z0-9-]*$")
_MAX_PREFIX_LENGTH = 24  # keeps "<prefix>-clickstream-opensearch" well under Aiven's 64 chars


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
    kafka_plan: str = field(default="business-4", metadata=_key("kafkaPlan"))
    kafka_version: str = field(default="3.8", metadata=_key("kafkaVersion"))
    postgres_plan: str = field(default="startup-4", metadata=_key("postgresPlan"))
    postgres_version: str = field(default="16", metadata=_key("postgresVersion"))
    opensearch_plan: str = field(default="startup-4", metadata=_key("opensearchPlan"))
    opensearch_version: str = field(default="2", metadata=_key("opensearchVersion"))
    topic_partitions: int = field(default=6, metadata=_key("topicPartitions"))
    topic_replication: int = field(default=3, metadata=_key("topicReplication"))
    topic_min_insync_replicas: int = field(default=2, metadata=_key("topicMinInsyncReplicas"))
    topic_retention_hours: int = field(default=168, metadata=_key("topicRetentionHours"))
    timescaledb: bool = field(default=True, metadata=_key("timescaledb"))
    termination_protection: bool = field(default=False, metadata=_key("terminationProtection"))

    def __post_init__(self) -> None:
        """Reject values Aiven would refuse late (mid-``pulumi up``) or that break the pipeline."""
        problems: list[str] = []
        for name in ("project", "cloud_name", "kafka_plan", "kafka_version", "postgres_plan",
                     "postgres_version", "opensearch_plan", "opensearch_version"):
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
        if problems:
            raise ConfigError("Invalid stack configuration:\n  - " + "\n  - ".join(problems))

    # Names derived from the prefix: one place, so the outputs and the resources agree.

    @property
    def kafka_service_name(self) -> str:
        return f"{self.name_prefix}-clickstream-kafka"

    @property
    def postgres_service_name(self) -> str:
        return f"{self.name_prefix}-clickstream-pg"

    @property
    def opensearch_service_name(self) -> str:
        return f"{self.name_prefix}-clickstream-opensearch"

    @property
    def events_topic(self) -> str:
        return f"{self.name_prefix}-clickstream-events"

    @property
    def dead_letter_topic(self) -> str:
        return f"{self.name_prefix}-clickstream-dead-letter"

    @property
    def consumer_group(self) -> str:
        return f"{self.name_prefix}-clickstream-sessionizer"

    @property
    def topic_retention_ms(self) -> int:
        return self.topic_retention_hours * 3600 * 1000


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
