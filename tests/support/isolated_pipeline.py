"""A private copy of the whole pipeline's world on the shared local stack, for one test.

Fresh events and dead-letter topics (with the production ACLs), a fresh consumer group,
a fresh PostgreSQL database and a fresh OpenSearch index prefix with a user that may
touch only that prefix, described by a stack-outputs file of its own. The pipeline is
then driven exactly as a user drives it:
``pipeline --outputs FILE ...`` in a subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from opensearchpy import OpenSearch

from devstack.opensearch_access import scoped_user
from devstack.secrets_store import write_private
from pipeline.config.settings import Settings
from pipeline.contract.names import IndexNames
from pipeline.contract.outputs import Output
from pipeline.sinks.opensearch.templates import delete_all
from pipeline.sinks.opensearch_client import opensearch_client
from tests.support.kafka_topics import IsolatedTopics, create_isolated_topics, delete_topics
from tests.support.postgres_db import temporary_database


@dataclass(frozen=True)
class IsolatedPipeline:
    settings: Settings
    outputs_file: Path
    topics: IsolatedTopics
    index_prefix: str

    def command(self, *args: str) -> list[str]:
        """``pipeline --outputs FILE [global flags] SUBCOMMAND ...``, the world's index prefix added where used."""
        n = next(i for i, a in enumerate(args) if not a.startswith("-"))
        flags, sub, rest = list(args[:n]), args[n], list(args[n + 1 :])
        if sub in ("consume", "schema", "run", "status"):
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


@contextmanager
def isolated_pipeline(base: Settings, outputs: dict[str, str], directory: Path) -> Iterator[IsolatedPipeline]:
    suffix = uuid.uuid4().hex[:10]
    names = IndexNames(f"t{suffix}-clickstream")
    admin = opensearch_client(base.opensearch, "admin")
    try:
        topics = create_isolated_topics(base, suffix=suffix)
        try:
            with temporary_database(base) as settings, scoped_user(admin, base.opensearch.uri.reveal(), names) as uri:
                values = dict(outputs)
                values[Output.OPENSEARCH_URI.value] = uri
                values[Output.KAFKA_EVENTS_TOPIC.value] = topics.events
                values[Output.KAFKA_DEAD_LETTER_TOPIC.value] = topics.dead_letter
                values[Output.KAFKA_CONSUMER_GROUP.value] = topics.group
                values[Output.POSTGRES_APP_URI.value] = settings.postgres.app_uri.reveal()
                values[Output.POSTGRES_ADMIN_URI.value] = settings.postgres.admin_uri.reveal()
                path = directory / "stack-outputs.json"
                write_private(path, json.dumps(values))
                isolated = IsolatedPipeline(Settings.from_outputs(values, source=str(path)), path, topics, names.prefix)
                try:
                    yield isolated
                finally:
                    delete_all(admin, names)
        finally:
            delete_topics(base, topics)
    finally:
        admin.close()
