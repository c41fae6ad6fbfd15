"""Template bodies and names, checked without a server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pipeline.contract.names import IndexNames
from pipeline.errors import ConfigError
from pipeline.sinks.opensearch.documents import EVENT_DOCUMENT_FIELDS, session_document
from pipeline.sinks.opensearch.mappings import (
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


def test_the_sample_session_row_has_only_mapped_columns() -> None:
    """The sample may leave a column out (documents are converted column by column), never invent one."""
    assert set(session_document(session_row())) <= set(SESSION_PROPERTIES)


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


def test_the_bodies_and_documents_need_no_client_library() -> None:
    """The pure half of the sink imports neither opensearch-py nor a database driver."""
    probe = (
        "import sys, pipeline.sinks.opensearch.mappings, pipeline.sinks.opensearch.documents\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'opensearchpy', 'psycopg', 'confluent_kafka'}))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
