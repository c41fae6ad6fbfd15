"""A private copy of the pipeline's world on the shared local stack, for one benchmark run.

Why: the benchmark produces a million events, drains them twice and runs a live load;
doing that in the production topic, database or indices would corrupt other people's
data and measure their data too. So every run gets, on the same real services:

* its own events and dead-letter topics, with exactly the production ACLs (the producer
  and consumer certificates are used unchanged, so authorisation costs what it costs in
  production), created with the admin certificate;
* per "sink set" (one per measurement that needs empty sinks): a fresh PostgreSQL
  database, locked down like production and migrated with the real migrations, a fresh
  OpenSearch index prefix with the real templates and a user limited to it (as the
  pipeline's user is in production), a fresh consumer group, and a
  stack-outputs file of its own so that ``pipeline --outputs FILE ...`` runs the real
  CLI against it without knowing it is a benchmark.

Everything created is registered for removal the moment it exists, and removed in
reverse order when the world closes, whatever happened in between (topics, ACLs,
consumer groups, databases, indices, templates, the private outputs files). The same
idea as ``tests/support/isolated_pipeline.py``, kept here so that the benchmark does not
depend on test helpers and can hold several sink sets on one topic.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import psycopg
from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AclBinding, AclBindingFilter, AdminClient, NewTopic
from opensearchpy import OpenSearch
from psycopg import sql

from devstack.kafka import acl_bindings, ensure_acls, wait_for_topics
from devstack.opensearch_access import (
    grant_prefix,
    new_password,
    owner_attributes,
    prefix_user,
    revoke_prefix,
    user_uri,
)
from devstack.secrets_store import write_private
from pipeline.config.secret import Secret
from pipeline.config.settings import Settings
from pipeline.contract.names import IndexNames
from pipeline.contract.outputs import Output
from pipeline.sinks.opensearch.templates import delete_all, ensure_templates
from pipeline.sinks.opensearch_client import opensearch_client
from pipeline.sinks.postgres.migrate import app_role_name, apply_migrations

log = logging.getLogger("pipeline_bench.world")

DATABASE_PREFIX = "clickstream_b"
"""Benchmark databases are ``clickstream_b<hex>`` (tests use ``clickstream_t``): easy to tell apart."""


def with_database(uri: str, database: str) -> str:
    """The same libpq URI pointing at another database (only the path changes)."""
    return urlunsplit(urlsplit(uri)._replace(path="/" + database))


@dataclass(frozen=True)
class SinkSet:
    """Empty sinks for one measurement: a database, an index prefix and a consumer group."""

    label: str
    database: str
    index_prefix: str
    group: str
    settings: Settings
    outputs_file: Path

    def cli(self, *args: str) -> list[str]:
        """``python -m pipeline --outputs FILE ARGS``: the real CLI, pointed at this sink set."""
        return [sys.executable, "-m", "pipeline", "--outputs", str(self.outputs_file), *args]

    def consume_args(self) -> list[str]:
        return ["--index-prefix", self.index_prefix, "--group", self.group]


class BenchWorld:
    """Topics of one run plus any number of sink sets; a context manager that cleans up everything."""

    def __init__(self, base_outputs: dict[str, Any], base: Settings, *, partitions: int | None = None) -> None:
        self.base_outputs = base_outputs
        self.base = base
        self.run_id = f"b{uuid.uuid4().hex[:10]}"
        self.topic = f"{base.kafka.events_topic}-{self.run_id}"
        self.dead_letter = f"{base.kafka.dead_letter_topic}-{self.run_id}"
        self.group_base = f"{base.kafka.consumer_group}-{self.run_id}"
        """Consumer groups of this run all start with this (the consumer's group ACL is a prefix)."""
        self._partitions = partitions
        self.partitions = 0
        self._stack = ExitStack()
        self._groups: list[str] = []
        self._admin: AdminClient | None = None
        self.private_dir = Path()
        """Private (0700) directory for the outputs files (they hold credentials) and logs; made on entry."""
        self.cleanup_errors: list[str] = []

    # --- lifetime -----------------------------------------------------------------------------
    def __enter__(self) -> BenchWorld:
        self._stack.__enter__()
        try:
            self.private_dir = Path(tempfile.mkdtemp(prefix="pipeline-bench-"))  # mode 0700
            self._undo("private directory", lambda: shutil.rmtree(self.private_dir, ignore_errors=True))
            self._create_topics()
        except BaseException:
            self.close()  # ``with`` does not call __exit__ when __enter__ fails: undo what exists
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.__exit__(None, None, None)

    def close(self) -> None:
        self._stack.close()

    def _undo(self, what: str, action: Callable[[], object]) -> None:
        """Register a cleanup step that never masks the original error: failures are collected."""

        def guarded() -> None:
            started = time.monotonic()
            try:
                action()
                log.info("removed %s (%.1f s)", what, time.monotonic() - started)
            except Exception as exc:  # cleanup must go on with the next item
                text = f"cleanup of {what} failed: {type(exc).__name__}: {str(exc)[:200]}"
                log.warning(text)
                self.cleanup_errors.append(text)

        self._stack.callback(guarded)

    @property
    def admin(self) -> AdminClient:
        if self._admin is None:
            self._admin = AdminClient(self.base.kafka.client_config("admin"))
        return self._admin

    # --- Kafka ----------------------------------------------------------------------------------
    def _create_topics(self) -> None:
        admin = self.admin
        if self._partitions is None:
            # Mirror the production topic, so that parallelism and batch shapes are the real ones.
            meta = admin.list_topics(self.base.kafka.events_topic, timeout=10).topics.get(self.base.kafka.events_topic)
            found = meta is not None and meta.error is None and meta.partitions
            self._partitions = len(meta.partitions) if found else 6
        self.partitions = self._partitions
        self._undo("Kafka consumer groups", self._delete_groups)
        self._undo("Kafka topics", lambda: self._delete_topics([self.topic, self.dead_letter]))
        futures = admin.create_topics(
            [NewTopic(self.topic, self.partitions, 1), NewTopic(self.dead_letter, 1, 1)], operation_timeout=30
        )
        for future in futures.values():
            future.result()
        wait_for_topics(admin, [self.topic, self.dead_letter])
        bindings = acl_bindings(self.topic, self.dead_letter, self.group_base)
        self._undo("Kafka ACLs", lambda: self._delete_acls(bindings))
        ensure_acls(admin, bindings)

    def _delete_topics(self, topics: list[str]) -> None:
        for future in self.admin.delete_topics(topics, operation_timeout=30).values():
            future.result()

    def _delete_acls(self, bindings: list[AclBinding]) -> None:
        filters = [
            AclBindingFilter(
                b.restype, b.name, b.resource_pattern_type, b.principal, b.host, b.operation, b.permission_type
            )
            for b in bindings
        ]
        for future in self.admin.delete_acls(filters, request_timeout=30).values():
            future.result()

    def _delete_groups(self) -> None:
        """Delete the run's consumer groups; a member that is still leaving makes the broker say
        NON_EMPTY_GROUP for a moment, so retry that for a few seconds. Not for the 45 s a member
        that vanished without leaving is kept (that would double the CI run): such a group is
        reported, and the broker removes it by itself."""
        pending = list(self._groups)
        deadline = time.monotonic() + 5
        while pending:
            retry = []
            for group, future in self.admin.delete_consumer_groups(pending, request_timeout=30).items():
                try:
                    future.result()
                except Exception as exc:
                    text = str(exc)
                    if "GROUP_ID_NOT_FOUND" in text:
                        continue  # never committed anything: nothing to delete
                    if "NON_EMPTY_GROUP" in text:
                        retry.append(group)
                        continue
                    raise
            pending = retry
            if pending and time.monotonic() > deadline:
                raise RuntimeError(
                    f"consumer group(s) {', '.join(pending)} still list a member that vanished without leaving "
                    "(a --drain consumer that exited during a rebalance); the broker drops that member after the "
                    "session timeout (45 s), and then the group, which holds no offsets since its topic was deleted, "
                    "at its next offsets-retention check (<= 10 min; observed)"
                )
            if pending:
                time.sleep(1.0)

    def group(self, name: str) -> str:
        """A consumer group of this run (removed at the end)."""
        group = f"{self.group_base}-{name}"
        self._groups.append(group)
        return group

    def group_at_end(self, name: str) -> str:
        """A new group whose committed offsets are the topic's current end: a consumer in it reads
        only what is produced from now on (what a live consumer that has caught up does)."""
        group = self.group(name)
        consumer = Consumer({**self.base.kafka.client_config("admin"), "group.id": "pipeline-bench-ends"})
        try:
            parts = consumer.list_topics(self.topic, timeout=10).topics[self.topic].partitions
            ends = [
                TopicPartition(
                    self.topic, p, consumer.get_watermark_offsets(TopicPartition(self.topic, p), timeout=10)[1]
                )
                for p in parts
            ]
        finally:
            consumer.close()
        request = [ConsumerGroupTopicPartitions(group, ends)]
        for future in self.admin.alter_consumer_group_offsets(request, request_timeout=30).values():
            future.result()
        return group

    # --- sinks ----------------------------------------------------------------------------------
    def new_sinks(self, label: str) -> SinkSet:
        """A fresh database (migrated), index prefix (templates put) and group, plus its outputs file."""
        suffix = uuid.uuid4().hex[:8]
        database = f"{DATABASE_PREFIX}{self.run_id[1:]}{suffix}"
        index_prefix = f"{self.run_id}{suffix}-clickstream"
        self._create_database(database)
        settings = self._settings_for(database)
        apply_migrations(settings)
        names = IndexNames(index_prefix)
        self._undo(f"OpenSearch prefix {index_prefix}", lambda: self.delete_prefix(names))
        ensure_templates(settings, index_prefix)
        user, password = prefix_user(names), new_password()
        self._undo(f"OpenSearch user {user}", lambda: self._with_admin(lambda c: revoke_prefix(c, user=user)))
        self._with_admin(
            lambda c: grant_prefix(c, user=user, password=password, names=names, attributes=owner_attributes())
        )
        values = dict(self.base_outputs)
        values[Output.OPENSEARCH_URI.value] = user_uri(self.base.opensearch.uri.reveal(), user, password)
        values[Output.KAFKA_EVENTS_TOPIC.value] = self.topic
        values[Output.KAFKA_DEAD_LETTER_TOPIC.value] = self.dead_letter
        group = self.group(label)
        values[Output.KAFKA_CONSUMER_GROUP.value] = group
        values[Output.POSTGRES_APP_URI.value] = settings.postgres.app_uri.reveal()
        values[Output.POSTGRES_ADMIN_URI.value] = settings.postgres.admin_uri.reveal()
        path = self.private_dir / f"stack-outputs-{label}.json"
        write_private(path, json.dumps(values))
        return SinkSet(label, database, index_prefix, group, Settings.from_outputs(values, source=str(path)), path)

    def drop_sinks(self, sinks: SinkSet) -> None:
        """Remove a sink set now (its cleanup stays registered and is then a no-op)."""
        self._drop_database(sinks.database)
        self.delete_prefix(IndexNames(sinks.index_prefix))

    def delete_prefix(self, names: IndexNames) -> None:
        self._with_admin(lambda client: delete_all(client, names))

    def _with_admin(self, action: Callable[[OpenSearch], None]) -> None:
        client = opensearch_client(self.base.opensearch, "admin")
        try:
            action(client)
        finally:
            client.close()

    def _settings_for(self, database: str) -> Settings:
        postgres = dataclasses.replace(
            self.base.postgres,
            app_uri=Secret(with_database(self.base.postgres.app_uri.reveal(), database)),
            admin_uri=Secret(with_database(self.base.postgres.admin_uri.reveal(), database)),
        )
        return dataclasses.replace(self.base, postgres=postgres)

    def _create_database(self, database: str) -> None:
        ident = sql.Identifier(database)
        app_user = unquote(urlsplit(self.base.postgres.app_uri.reveal()).username or "") or app_role_name(self.base)
        self._undo(f"database {database}", lambda: self._drop_database(database))
        with psycopg.connect(self.base.postgres.conninfo("admin"), autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(ident))
            # Locked down like production: only the application role may connect.
            admin.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(ident))
            admin.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(ident, sql.Identifier(app_user)))

    def _drop_database(self, database: str) -> None:
        with psycopg.connect(self.base.postgres.conninfo("admin"), autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
