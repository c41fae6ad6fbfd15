"""Template bodies and names, checked without a server."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from pipeline.contract.names import IndexNames
from pipeline.errors import ConfigError
from pipeline.sinks.opensearch.documents import EVENT_DOCUMENT_FIELDS, session_document
from pipeline.sinks.opensearch.templates import (
    EVENT_PROPERTIES,
    SESSION_PROPERTIES,
    events_component_body,
    events_template_body,
    replicas_for,
    sessions_component_body,
    sessions_template_body,
    settings_component_body,
)
from tests.support.events import session_row

REPO = Path(__file__).resolve().parents[3]
MIGRATIONS = REPO / "pipeline" / "sinks" / "postgres" / "migrations"
SESSION_SQL = REPO / "pipeline" / "sessions" / "metrics.sql"

KEYWORDS = [
    "event_id",
    "event_type",
    "user_id",
    "session_id",
    "page_url",
    "page_path",
    "referrer",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "device_type",
    "browser",
    "os",
    "country",
    "element_id",
    "product_id",
    "order_id",
]


def _types(properties: dict[str, Any]) -> dict[str, str]:
    return {name: spec["type"] for name, spec in properties.items()}


def test_event_mapping_covers_exactly_the_event_document() -> None:
    assert list(EVENT_PROPERTIES) == list(EVENT_DOCUMENT_FIELDS)


def test_event_field_types() -> None:
    types = _types(EVENT_PROPERTIES)
    assert {name: types[name] for name in KEYWORDS} == dict.fromkeys(KEYWORDS, "keyword")
    assert types["occurred_at"] == types["ingested_at"] == "date"
    assert types["price"] == types["revenue"] == "double"
    assert types["kafka_partition"] == "integer" and types["kafka_offset"] == "long"
    assert types["search_query"] == "text"
    assert EVENT_PROPERTIES["search_query"]["fields"]["keyword"]["type"] == "keyword"
    assert [name for name, kind in types.items() if kind == "text"] == ["search_query"]


def _session_table_columns() -> set[str]:
    """Columns of the PostgreSQL ``sessions`` table, read from the migrations (CREATE, then ALTERs)."""
    texts = [re.sub(r"--[^\n]*", "", path.read_text()) for path in sorted(MIGRATIONS.glob("*.sql"))]
    created = [m for text in texts for m in re.findall(r"CREATE TABLE sessions \((.*?)\n\)", text, re.DOTALL)]
    assert len(created) == 1, f"expected one CREATE TABLE sessions in {MIGRATIONS}"
    lines = [line.strip() for line in created[0].splitlines()]
    columns = {line.split()[0] for line in lines if line and not line.upper().startswith(("CONSTRAINT", "PRIMARY"))}
    for text in texts:
        for statement in re.findall(r"ALTER TABLE (?:ONLY )?sessions\b([^;]*);", text, re.IGNORECASE):
            columns |= set(re.findall(r"ADD (?:COLUMN )?(?:IF NOT EXISTS )?(\w+)", statement, re.IGNORECASE))
            columns -= set(re.findall(r"DROP (?:COLUMN )?(?:IF EXISTS )?(\w+)", statement, re.IGNORECASE))
    return columns


def _session_document_columns() -> list[str]:
    """The columns the PostgreSQL sink hands to OpenSearch: the final, top-level SELECT of the session upsert."""
    text = re.sub(r"--[^\n]*", "", SESSION_SQL.read_text())
    selects = re.findall(r"^SELECT\s+(.*?)\s+FROM\s", text, re.DOTALL | re.IGNORECASE | re.MULTILINE)
    assert selects, f"no top-level SELECT ... FROM in {SESSION_SQL}"
    return [column.strip() for column in selects[-1].split(",")]


def test_session_mapping_covers_exactly_the_columns_of_a_session_document() -> None:
    """The mapping is strict: a column the upsert starts returning without a mapping here would fail every write."""
    columns = _session_document_columns()
    assert all(re.fullmatch(r"\w+", c) for c in columns), columns
    assert sorted(SESSION_PROPERTIES) == sorted(columns)


def test_every_session_document_column_is_a_column_of_the_sessions_table() -> None:
    assert set(SESSION_PROPERTIES) <= _session_table_columns()


def test_the_sample_session_row_matches_the_mapping() -> None:
    assert set(session_document(session_row())) == set(SESSION_PROPERTIES)


def test_session_field_types() -> None:
    types = _types(SESSION_PROPERTIES)
    assert types["session_id"] == types["user_id"] == types["landing_page"] == "keyword"
    assert types["started_at"] == types["ended_at"] == types["updated_at"] == "date"
    assert types["converted"] == types["is_engaged"] == types["is_bounce"] == "boolean"
    assert types["revenue"] == types["duration_s"] == "double"
    assert types["version"] == "long" and types["page_views"] == "integer"
    assert "text" not in types.values()


def test_both_mappings_are_strict_and_versioned() -> None:
    for body, kind in ((events_component_body(), "events"), (sessions_component_body(), "sessions")):
        mappings = body["template"]["mappings"]
        assert mappings["dynamic"] == "strict"
        assert mappings["_meta"]["kind"] == kind and mappings["_meta"]["mapping_version"] >= 1


def test_index_templates_compose_settings_and_mappings_on_their_own_patterns() -> None:
    names = IndexNames("t1-clickstream")
    events = events_template_body(names, shards=2)
    assert events["index_patterns"] == ["t1-clickstream-events-*"]
    assert events["composed_of"] == ["t1-clickstream-settings", "t1-clickstream-events-mappings"]
    assert events["template"]["aliases"] == {"t1-clickstream-events": {}}
    assert events["template"]["settings"]["index"]["number_of_shards"] == 2
    sessions = sessions_template_body(names)
    assert sessions["index_patterns"] == ["t1-clickstream-sessions-*"]
    assert sessions["composed_of"] == ["t1-clickstream-settings", "t1-clickstream-sessions-mappings"]
    assert names.sessions_index == "t1-clickstream-sessions-v1"
    assert settings_component_body(replicas=1)["template"]["settings"]["index"]["number_of_replicas"] == 1


def test_production_names() -> None:
    names = IndexNames()
    assert (names.events_alias, names.sessions_alias) == ("clickstream-events", "clickstream-sessions")


@pytest.mark.parametrize(("nodes", "replicas"), [(0, 0), (1, 0), (2, 1), (3, 1), (9, 1)])
def test_replicas_follow_the_data_nodes(nodes: int, replicas: int) -> None:
    assert replicas_for(nodes) == replicas


@pytest.mark.parametrize("prefix", ["", "Clickstream", "-x", "a b", "a*", "a,b", "x" * 101, "a/b"])
def test_bad_prefixes_are_refused(prefix: str) -> None:
    with pytest.raises(ConfigError):
        IndexNames(prefix)
