"""Both sinks of one private world (a migrated database, an index prefix with its own user) and the writer."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from opensearchpy import OpenSearch

from devstack.opensearch_access import settings_for_prefix
from pipeline.config.settings import Settings
from pipeline.contract.names import IndexNames
from pipeline.sinks.opensearch.index import OpenSearchIndex
from pipeline.sinks.postgres.migrate import apply_migrations
from pipeline.sinks.postgres.store import PostgresStore
from pipeline.sinks.writer import BatchWriter
from tests.integration.postgres.session_events import T0
from tests.support.opensearch_prefix import private_prefix
from tests.support.postgres_db import temporary_database
from tests.support.sink_readers import documents, rows


@dataclass
class Sinks:
    settings: Settings
    names: IndexNames
    admin: OpenSearch
    postgres: PostgresStore
    opensearch: OpenSearchIndex
    writer: BatchWriter

    def rows(self, query: str, *params: object) -> list[dict[str, Any]]:
        return rows(self.settings, query, *params)

    def admin_sql(self, statement: str) -> None:
        with psycopg.connect(self.settings.postgres.conninfo("admin"), autocommit=True) as conn:
            conn.execute(statement)  # type: ignore[arg-type]

    def documents(self, alias: str) -> dict[str, dict[str, Any]]:
        """Every document under ``alias``: id -> {"_source", "_version", "_seq_no"}."""
        hits = documents(self.admin, alias)
        return {
            i: {"_source": h["_source"], "_version": h["_version"], "_seq_no": h["_seq_no"]} for i, h in hits.items()
        }

    def stricter_opensearch(self, properties: dict[str, Any]) -> None:
        """Re-shape the events template so OpenSearch refuses what our mapping accepts (a sink stricter
        than the contract); the ``_meta`` the sink checks stays, so only the documents notice."""
        template = self.admin.indices.get_index_template(name=self.names.events_template)["index_templates"][0]
        body = template["index_template"]
        body.setdefault("template", {})["mappings"] = {"properties": properties}
        self.admin.indices.put_index_template(name=self.names.events_template, body=body)
        for index in self.admin.indices.get(index=self.names.events_pattern):
            self.admin.indices.delete(index=index)


@pytest.fixture
def sinks(settings: Settings, opensearch_admin: OpenSearch) -> Iterator[Sinks]:
    with temporary_database(settings) as db:
        apply_migrations(db)
        with (
            private_prefix(opensearch_admin, templates=settings, now=T0) as names,
            settings_for_prefix(db, names) as scoped,
            PostgresStore(scoped) as postgres,
            OpenSearchIndex(scoped, index_prefix=names.prefix) as opensearch,
        ):
            yield Sinks(db, names, opensearch_admin, postgres, opensearch, BatchWriter(postgres, opensearch))
