"""A private copy of the whole pipeline's world on the shared local stack, for one test or one benchmark run.

Why: tests and benchmarks run the real CLI against the real services, at the same time
as other people's; doing that in the production topic, database or indices would
corrupt their data and read it too. So a world gets, on the same services:

* its own events and dead-letter topics, with exactly the production ACLs
  (``kafka_topics.py``), its consumer groups starting with the world's group prefix;
* per :class:`IsolatedPipeline` (one per test; one per benchmark measurement that needs
  empty sinks, all on the world's topics): a fresh PostgreSQL database locked down like
  production (``postgres_db.py``), a fresh OpenSearch index prefix with a user limited to
  it, as the pipeline's user is in production, and a stack-outputs file of its own, so
  ``pipeline --outputs FILE ...`` runs the real CLI against it without knowing;
* everything registered for removal the moment it exists and removed in reverse order
  at the end, whatever happened, without hiding the error that ended the block
  (``cleanup.py``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from confluent_kafka.admin import AdminClient
from opensearchpy import OpenSearch

from devstack.opensearch_access import scoped_user
from devstack.secrets_store import write_private
from pipeline.config.settings import Settings
from pipeline.contract.names import IndexNames
from pipeline.contract.outputs import Output
from pipeline.sinks.opensearch_client import opensearch_client
from pipeline.sinks.postgres.migrate import apply_migrations
from tests.support.cleanup import Cleanup
from tests.support.ids import private_id
from tests.support.kafka_offsets import admin_client, delete_groups, end_offsets, set_group_offsets
from tests.support.kafka_topics import (
    DEFAULT_PARTITIONS,
    IsolatedTopics,
    isolated_topics,
    production_partitions,
)
from tests.support.opensearch_prefix import private_prefix
from tests.support.postgres_db import DATABASE_PREFIX, temporary_database

PREFIXED_COMMANDS = ("consume", "schema", "run", "status")
"""Subcommands that take ``--index-prefix``; :meth:`IsolatedPipeline.command` adds the world's."""


@dataclass(frozen=True)
class IsolatedPipeline:
    """One private pipeline: the world's topics, a group, a database, an index prefix, an outputs file."""

    label: str
    settings: Settings
    outputs_file: Path
    topics: IsolatedTopics
    index_prefix: str
    database: str
    group: str
    """The group in the outputs file (the consumer's default)."""

    @property
    def names(self) -> IndexNames:
        return IndexNames(self.index_prefix)

    def command(self, *args: str) -> list[str]:
        """``python -m pipeline --outputs FILE [global flags] SUBCOMMAND ...``, the index prefix added where used."""
        n = next(i for i, a in enumerate(args) if not a.startswith("-"))
        flags, sub, rest = list(args[:n]), args[n], list(args[n + 1 :])
        if sub in PREFIXED_COMMANDS:
            rest += ["--index-prefix", self.index_prefix]
        return [sys.executable, "-m", "pipeline", "--outputs", str(self.outputs_file), *flags, sub, *rest]

    def cli(self, *args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``pipeline --outputs FILE ARGS`` and return its result (stdout+stderr captured)."""
        result = subprocess.run(
            self.command(*args),
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        if check and result.returncode != 0:
            raise AssertionError(f"pipeline {' '.join(args)} exited {result.returncode}:\n{result.stderr[-3000:]}")
        return result

    def spawn(self, *args: str, log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """``pipeline --outputs FILE ARGS`` in the background, output appended to ``log``, extra env vars set."""
        with open(log, "ab") as out:
            return subprocess.Popen(
                self.command(*args),
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
            )

    def opensearch(self) -> OpenSearch:
        return opensearch_client(self.settings.opensearch, "admin")


class IsolatedWorld:
    """The topics of one test or run, plus any number of private pipelines on them; a context manager."""

    def __init__(
        self,
        base_outputs: Mapping[str, object],
        base: Settings,
        *,
        tag: str,
        partitions: int | None = DEFAULT_PARTITIONS,
        directory: Path | None = None,
        strict: bool = True,
    ) -> None:
        """``tag`` starts every name (``t`` tests, ``b`` benchmarks); ``partitions=None`` mirrors the
        stack's events topic; ``directory`` holds the outputs files (default: a private temporary
        directory, removed at the end); ``strict`` raises cleanup failures after a successful block."""
        self.base_outputs = dict(base_outputs)
        self.base = base
        self.run_id = private_id(tag)
        self._partitions = partitions
        self._directory = directory
        self.cleanup = Cleanup(strict=strict)
        self.private_dir = Path()
        """Private directory for the outputs files (they hold credentials) and logs; made on entry."""
        self.topics = IsolatedTopics("", "", "")
        self._groups: list[str] = []
        self._admin: AdminClient | None = None
        self._opensearch: OpenSearch | None = None
        self._owned: dict[str, Cleanup] = {}

    # --- lifetime -----------------------------------------------------------------------------
    def __enter__(self) -> IsolatedWorld:
        try:
            if self._directory is None:
                self.private_dir = Path(tempfile.mkdtemp(prefix="clickstream-world-"))  # mode 0700
                self.cleanup.undo("private directory", lambda: shutil.rmtree(self.private_dir, ignore_errors=True))
            else:
                self.private_dir = self._directory
            self.cleanup.undo("OpenSearch admin client", self._close_opensearch)
            self.cleanup.undo("Kafka consumer groups", lambda: delete_groups(self.admin, self._groups))
            partitions = self._partitions or production_partitions(self.base)
            self.topics = self.cleanup.enter(
                "Kafka topics and ACLs", isolated_topics(self.base, self.run_id, partitions=partitions)
            )
        except BaseException as exc:  # ``with`` does not call __exit__ when __enter__ fails: undo what exists
            self.cleanup.__exit__(type(exc), exc, exc.__traceback__)
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.cleanup.__exit__(kind, exc, tb)

    def _close_opensearch(self) -> None:
        if self._opensearch is not None:
            self._opensearch.close()

    @property
    def cleanup_errors(self) -> list[str]:
        return self.cleanup.errors

    @property
    def admin(self) -> AdminClient:
        """A Kafka admin client (admin certificate)."""
        if self._admin is None:
            self._admin = admin_client(self.base)
        return self._admin

    @property
    def opensearch_admin(self) -> OpenSearch:
        if self._opensearch is None:
            self._opensearch = opensearch_client(self.base.opensearch, "admin")
        return self._opensearch

    # --- Kafka ----------------------------------------------------------------------------------
    def group(self, name: str) -> str:
        """A consumer group of this world (deleted at the end)."""
        group = f"{self.topics.group}-{name}"
        self._groups.append(group)
        return group

    def group_at_end(self, name: str) -> str:
        """A new group whose committed offsets are the topic's current end: a consumer in it reads
        only what is produced from now on (what a live consumer that has caught up does)."""
        group = self.group(name)
        set_group_offsets(self.base, group, self.topics.events, end_offsets(self.base, self.topics.events))
        return group

    # --- private pipelines ------------------------------------------------------------------------
    def new_pipeline(self, label: str, *, prepared: bool = True, group: str | None = None) -> IsolatedPipeline:
        """A fresh database and index prefix with its own user, and an outputs file naming them.

        ``prepared``: migrated and with the index templates put, as ``pipeline schema`` leaves
        them (a test that runs ``pipeline schema`` itself wants them empty). ``group``: the
        outputs file's consumer group, by default a new one of this world, deleted at the end.
        """
        key = f"{self.run_id}{uuid.uuid4().hex[:8]}"
        names = IndexNames(f"{key}-clickstream")
        database = f"{DATABASE_PREFIX}{key}"
        own = self.cleanup.nested(f"pipeline {label}")
        settings = own.enter(f"database {database}", temporary_database(self.base, database))
        if prepared:
            apply_migrations(settings)
        admin = self.opensearch_admin
        own.enter(
            f"OpenSearch prefix {names.prefix}", private_prefix(admin, names, templates=settings if prepared else None)
        )
        uri = own.enter(
            f"OpenSearch user of {names.prefix}", scoped_user(admin, self.base.opensearch.uri.reveal(), names)
        )
        group = group or self.group(label)
        values = dict(self.base_outputs)
        values[Output.OPENSEARCH_URI.value] = uri
        values[Output.KAFKA_EVENTS_TOPIC.value] = self.topics.events
        values[Output.KAFKA_DEAD_LETTER_TOPIC.value] = self.topics.dead_letter
        values[Output.KAFKA_CONSUMER_GROUP.value] = group
        values[Output.POSTGRES_APP_URI.value] = settings.postgres.app_uri.reveal()
        values[Output.POSTGRES_ADMIN_URI.value] = settings.postgres.admin_uri.reveal()
        path = self.private_dir / f"stack-outputs-{label}.json"
        write_private(path, json.dumps(values))
        pipeline = IsolatedPipeline(
            label, Settings.from_outputs(values, source=str(path)), path, self.topics, names.prefix, database, group
        )
        self._owned[pipeline.label] = own
        return pipeline

    def drop_pipeline(self, pipeline: IsolatedPipeline) -> None:
        """Remove a pipeline's database, indices and user now (failures are recorded like any cleanup)."""
        self._owned.pop(pipeline.label).close()


@contextmanager
def isolated_pipeline(base: Settings, outputs: Mapping[str, str], directory: Path) -> Iterator[IsolatedPipeline]:
    """One test's world: six partitions, one group (the world's prefix itself), empty sinks."""
    with IsolatedWorld(outputs, base, tag="t", directory=directory) as world:
        yield world.new_pipeline("test", prepared=False, group=world.topics.group)
