"""The names every part of the platform agrees on, defined once.

The Pulumi program (``infra``), the local stack (``devstack``) and the pipeline all import
these, so a principal, a topic or an index name cannot differ between where it is
created, where it is granted rights and where it is used. Nothing here does I/O or needs
a third-party package: importing it never pulls a client library into ``pulumi up``.

On Aiven every Kafka topic and the consumer group carry a per-stack prefix
(``<namePrefix>-clickstream-events``, see :func:`prefixed`) so two stacks can share one
Aiven project; the local stack uses the bare names.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from dataclasses import dataclass
from typing import Final

from pipeline.errors import ConfigError

PROJECT: Final = "clickstream"
"""The project's name: the Pulumi project and config namespace, and the stem of every name below."""

# --- Kafka --------------------------------------------------------------------------------
EVENTS_TOPIC: Final = f"{PROJECT}-events"
DEAD_LETTER_TOPIC: Final = f"{PROJECT}-dead-letter"
CONSUMER_GROUP: Final = f"{PROJECT}-sessionizer"
EVENTS_PARTITIONS: Final = 6
"""Partitions of the events topic by default: the most consumer processes one group can use."""
ADMIN_PRINCIPAL: Final = "avnadmin"
"""Aiven's service admin; the local stack's Kafka super user and PostgreSQL/OpenSearch admin too."""
PRODUCER_PRINCIPAL: Final = f"{PROJECT}-producer"
"""May only write the events topic."""
CONSUMER_PRINCIPAL: Final = f"{PROJECT}-consumer"
"""May only read the events topic (in its group) and write the dead-letter topic."""

# --- PostgreSQL ---------------------------------------------------------------------------
DATABASE: Final = PROJECT
APP_ROLE: Final = f"{PROJECT}_app"
"""The application role: reads and writes rows, owns nothing, creates nothing."""
MAX_LOCKS_PER_TRANSACTION: Final = 256
"""The server's ``max_locks_per_transaction`` (PostgreSQL's default: 64). The sink holds one
advisory lock per session of each batch in flight until it commits (two 5,000-event
batches of live traffic: about 6,500), and the lock table holds this many times the
connection slots in all, which on a small Aiven plan would leave too little room at 64."""

# --- OpenSearch ---------------------------------------------------------------------------
PIPELINE_USER: Final = f"{PROJECT}-pipeline"
"""Indexes events and sessions in the pipeline's own indices only."""
DEFAULT_INDEX_PREFIX: Final = PROJECT
SESSIONS_GENERATION: Final = 1
"""The ``-vN`` suffix of the sessions index behind the ``<p>-sessions`` alias."""

_UTC: Final = dt.UTC
_PREFIX_RE: Final = re.compile(r"[a-z0-9][a-z0-9_-]{0,99}")


def prefixed(prefix: str, name: str) -> str:
    """A per-stack name on Aiven: ``<prefix>-<name>`` (topics and the consumer group)."""
    return f"{prefix}-{name}"


@dataclass(frozen=True, slots=True)
class IndexNames:
    """Every OpenSearch name derived from one prefix, so a test can own a disjoint set."""

    prefix: str = DEFAULT_INDEX_PREFIX

    def __post_init__(self) -> None:
        if not _PREFIX_RE.fullmatch(self.prefix):
            raise ConfigError(
                f"OpenSearch index prefix {self.prefix!r} must be 1-100 characters of a-z, 0-9, '-' or '_', "
                "starting with a letter or digit"
            )

    @property
    def events_alias(self) -> str:
        return f"{self.prefix}-events"

    @property
    def events_pattern(self) -> str:
        return f"{self.prefix}-events-*"

    def events_index(self, occurred_at: dt.datetime) -> str:
        """The monthly index of an event: a pure function of its ``occurred_at`` (in UTC)."""
        if occurred_at.tzinfo is not _UTC:
            occurred_at = occurred_at.astimezone(_UTC)
        return _events_index(self.prefix, occurred_at.year, occurred_at.month)

    @property
    def sessions_alias(self) -> str:
        return f"{self.prefix}-sessions"

    @property
    def sessions_pattern(self) -> str:
        return f"{self.prefix}-sessions-*"

    @property
    def sessions_index(self) -> str:
        return f"{self.prefix}-sessions-v{SESSIONS_GENERATION}"

    @property
    def access_patterns(self) -> tuple[str, str]:
        """What the pipeline's credentials may touch: both aliases and every index behind them.

        The Aiven ACL rules (``infra``) and the local stack's role are both built from
        this, so the two grant exactly the same indices.
        """
        return (f"{self.events_alias}*", f"{self.sessions_alias}*")

    @property
    def settings_component(self) -> str:
        return f"{self.prefix}-settings"

    @property
    def events_component(self) -> str:
        return f"{self.prefix}-events-mappings"

    @property
    def sessions_component(self) -> str:
        return f"{self.prefix}-sessions-mappings"

    @property
    def events_template(self) -> str:
        return f"{self.prefix}-events"

    @property
    def sessions_template(self) -> str:
        return f"{self.prefix}-sessions"


@functools.lru_cache(maxsize=256)
def _events_index(prefix: str, year: int, month: int) -> str:
    return f"{prefix}-events-{year:04d}.{month:02d}"
